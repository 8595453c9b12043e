SELECT recorded, username, role, action, interaction, outcome, purpose, object
FROM audit_event
WHERE patient = $patient
ORDER BY recorded, username
