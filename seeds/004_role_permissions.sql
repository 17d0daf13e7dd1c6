-- Which role may do what. Idempotent: the primary key makes reruns a no-op.
INSERT INTO role_permissions (role_id, permission_id)
SELECT r.id, p.id
FROM roles r
JOIN permissions p ON
     r.name = 'owner'
  OR (r.name = 'admin' AND p.code IN ('org.read', 'org.update', 'members.manage'))
  OR (r.name IN ('member', 'viewer') AND p.code = 'org.read')
ON CONFLICT DO NOTHING;
