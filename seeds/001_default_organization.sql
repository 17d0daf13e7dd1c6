-- The tenant every new user joins until they create their own. Idempotent: safe on every start.
INSERT INTO organizations (name, slug, plan)
VALUES ('Default Organization', 'default', 'free')
ON CONFLICT (slug) DO NOTHING;
