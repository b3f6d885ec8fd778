-- Conversations held by simulated callers (`python -m evals simulate`): which run,
-- suite and scenario each was, and its verdict. A conversation with a row here is
-- simulated; the simulation accounts that own them cannot sign in (Supabase Auth
-- holds them banned), and, like every conversation, they are their owner's, the
-- researchers' and the admins' to read: never another plain user's. Only the
-- service (the simulation CLI, which opened the room as the web app does) writes.

create table public.simulated_calls (
  conversation_id uuid primary key references public.conversations (id) on delete cascade,
  run_id uuid not null,
  suite text not null check (char_length(suite) between 1 and 64),
  scenario text not null check (char_length(scenario) between 1 and 64),
  repeat integer not null default 0 check (repeat >= 0),
  passed boolean,
  error text check (char_length(error) <= 2000),
  created_at timestamptz not null default now()
);
comment on table public.simulated_calls is 'Conversations held by simulated callers: run, suite, scenario and verdict.';
create index simulated_calls_run on public.simulated_calls (run_id);

alter table public.simulated_calls enable row level security;
revoke all on public.simulated_calls from anon, authenticated;
grant select on public.simulated_calls to authenticated;
create policy "researchers read simulated calls" on public.simulated_calls
  for select to authenticated using ((select public.has_role('researcher')));
