-- Browser sessions of the Panel server, held server-side: the browser keeps only a
-- random id in an HttpOnly cookie; the Supabase Auth tokens never reach it.
-- Rows are keyed by sha256 of that id, so a database reader cannot hijack a session.

create table private.web_sessions (
  id_hash text primary key check (id_hash ~ '^[0-9a-f]{64}$'),
  user_id uuid not null references auth.users (id) on delete cascade,
  access_token text not null,
  refresh_token text not null,
  access_expires_at timestamptz not null,
  created_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  expires_at timestamptz not null default now() + interval '7 days',
  user_agent text check (user_agent is null or char_length(user_agent) <= 500)
);
comment on table private.web_sessions is 'Server-side browser sessions: sha256 of the cookie value, the Supabase Auth tokens, idle and absolute expiry.';
create index web_sessions_user on private.web_sessions (user_id);
alter table private.web_sessions enable row level security;
-- No policies: only the table owner and service_role (bypassrls) may touch it.
grant select, insert, update, delete on private.web_sessions to service_role;
