-- The rooms the web app opened, and for whom. The agent records a conversation
-- only for the participant a room was opened for: anyone holding the LiveKit key
-- pair can create a room and join it under any identity, and the agent records
-- with service rights, so the identity alone proved nothing.

create table private.rooms (
  name text primary key check (char_length(name) between 1 and 200),
  owner_id uuid not null references auth.users (id) on delete cascade,
  created_at timestamptz not null default now()
);
comment on table private.rooms is 'LiveKit rooms opened by the web app for a signed-in user; the agent records conversations only for that user.';
create index rooms_owner on private.rooms (owner_id, created_at desc);
alter table private.rooms enable row level security;
-- No policies: only the table owner and service_role (bypassrls) may touch it.
grant select, insert, delete on private.rooms to service_role;
