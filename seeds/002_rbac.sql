-- Roles and permissions the application checks. Updated in place when descriptions change.
INSERT INTO roles (name, description) VALUES
  ('owner', 'Full access, billing and deletion'),
  ('admin', 'Manage members and settings'),
  ('member', 'Use the application'),
  ('viewer', 'Read only')
ON CONFLICT (name) DO UPDATE SET description = excluded.description;

INSERT INTO permissions (code, description) VALUES
  ('org.read', 'See the organization'),
  ('org.update', 'Change organization settings'),
  ('members.manage', 'Invite and remove members'),
  ('billing.manage', 'Change plan and payment details')
ON CONFLICT (code) DO UPDATE SET description = excluded.description;

INSERT INTO role_permissions (role_id, permission_id)
SELECT r.id, p.id
FROM roles r
JOIN permissions p ON
     r.name = 'owner'
  OR (r.name = 'admin' AND p.code IN ('org.read', 'org.update', 'members.manage'))
  OR (r.name IN ('member', 'viewer') AND p.code = 'org.read')
ON CONFLICT DO NOTHING;
