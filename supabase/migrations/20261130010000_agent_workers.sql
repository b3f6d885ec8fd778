-- Model stacks chosen per conversation. One agent worker per stack registers with
-- LiveKit under the stack's own agent name; the web app dispatches a room to the
-- stack chosen for it. LiveKit's server API does not list registered workers, so
-- each worker announces itself here (a heartbeat every few seconds: its stack and
-- spec, whether its models answer, rooms held, memory) and the web app offers a
-- stack only while a ready worker's heartbeat is fresh. Workers on other machines
-- write the same rows through the same service connection.

create table public.agent_workers (
  id text primary key check (char_length(id) between 1 and 200),
  stack text not null check (stack ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
  agent_name text not null check (char_length(agent_name) between 1 and 200),
  spec jsonb not null check (jsonb_typeof(spec) = 'object'),
  host text not null check (char_length(host) between 1 and 255),
  state text not null check (state in ('loading', 'ready', 'failed', 'gave_up')),
  reason text not null default '' check (char_length(reason) <= 2000),
  rooms integer not null default 0 check (rooms >= 0),
  max_rooms integer not null check (max_rooms >= 1),
  memory_mb integer check (memory_mb is null or memory_mb >= 0),
  started_at timestamptz not null default now(),
  seen_at timestamptz not null default now()
);
comment on table public.agent_workers is 'Agent workers announcing themselves (heartbeat): stack, spec, model state, rooms, memory. Written by workers (service role); read by signed-in users to see which stacks can serve.';
create index agent_workers_stack on public.agent_workers (stack, seen_at desc);
alter table public.agent_workers enable row level security;
revoke all on public.agent_workers from anon, authenticated;
grant select on public.agent_workers to authenticated;
grant select, insert, update, delete on public.agent_workers to service_role;
create policy "signed-in users see the workers" on public.agent_workers
  for select to authenticated using (true);

-- A worker counts while its heartbeat is younger than three beats.
create view public.live_stacks with (security_invoker = on) as
select stack,
       (array_agg(spec order by seen_at desc))[1] as spec,
       count(*) filter (where state = 'ready') as workers,
       coalesce(sum(rooms) filter (where state = 'ready'), 0) as rooms,
       coalesce(sum(max_rooms) filter (where state = 'ready'), 0) as max_rooms,
       max(memory_mb) as worker_memory_mb,
       string_agg(nullif(reason, ''), '; ') as problems
from public.agent_workers
where seen_at > now() - interval '15 seconds'
group by stack;
comment on view public.live_stacks is 'Per stack, its workers with a fresh heartbeat: how many are ready, rooms held of their slots, the largest worker''s memory (MB) and why any is not ready.';
grant select on public.live_stacks to authenticated;

-- The stack a room was opened on (null: the default users get). Choosing another is
-- a researcher's (or admin's) power, checked here rather than trusted to the web app.
alter table private.rooms add column stack text
  check (stack is null or stack ~ '^[a-z0-9][a-z0-9_-]{0,63}$');
comment on column private.rooms.stack is 'The model stack chosen for the room; null for the default stack.';

create function private.check_stack_choice() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if new.stack is not null
     and coalesce((select role from public.profiles where id = new.owner_id), 'user') = 'user' then
    raise exception 'only researchers and admins choose the model stack' using errcode = '42501';
  end if;
  return new;
end
$$;
create trigger rooms_stack_choice before insert or update of stack on private.rooms
  for each row execute function private.check_stack_choice();
