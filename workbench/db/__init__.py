"""All SQL lives here: connections, RLS sessions, migrations, repositories per aggregate."""
