-- Pair browser-heard latency with agent turns by a stored ordinal, in O(log n).
--
-- Before: every agent turn inserted counted the conversation's earlier agent turns
-- (turns_take_heard_latency), and a report looked the turn up with `offset
-- ordinal`, so writing a conversation cost the square of its length (measured:
-- 117 rows/s by COPY into one conversation of 10^5 turns).
-- Now: each agent turn carries `agent_ordinal` (its place among the
-- conversation's agent turns; the recorder states it, and a writer that does
-- not gets the previous agent turn's + 1 from an index); a report finds its
-- turn by index, and turns find reports once per statement.

alter table public.turns add column agent_ordinal integer
  check (agent_ordinal is null or agent_ordinal >= 0);
alter table public.turns add constraint turns_agent_ordinal_for_agents
  check ((role = 'agent') = (agent_ordinal is not null)) not valid;
comment on column public.turns.agent_ordinal is 'For agent turns: 0 for the conversation''s first (the greeting), then 1, 2, ... in idx order; what the browser reports heard latency by.';

update public.turns t set agent_ordinal = numbered.ordinal
from (
  select id, row_number() over (partition by conversation_id order by idx) - 1 as ordinal
  from public.turns where role = 'agent'
) numbered
where t.id = numbered.id;
alter table public.turns validate constraint turns_agent_ordinal_for_agents;

create unique index turns_agent_ordinal on public.turns (conversation_id, agent_ordinal)
  where role = 'agent';
create index turns_agent_idx on public.turns (conversation_id, idx) where role = 'agent';

create or replace function private.agent_turn_at(conversation uuid, ordinal integer) returns bigint
language sql stable security definer set search_path = ''
as $$
  select t.id from public.turns t
  where t.conversation_id = conversation and t.role = 'agent' and t.agent_ordinal = ordinal
$$;

-- A writer that does not state the ordinal gets the previous agent turn's + 1 (one
-- index probe, not a count); the recorder states it, and skips this trigger.
create function private.derive_agent_ordinal() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  select coalesce(max(t.agent_ordinal) + 1, 0) into new.agent_ordinal
  from (select p.agent_ordinal from public.turns p
        where p.conversation_id = new.conversation_id and p.role = 'agent' and p.idx < new.idx
        order by p.idx desc limit 1) t;
  return new;
end
$$;

-- Reports that arrived before their turn are taken once per statement, in one join
-- (a COPY of 10^5 turns runs it once), instead of one lookup per row.
create function private.take_heard_latency() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  heard record;
begin
  -- Matched rows are few (reports that came first); each is updated by primary key,
  -- so the planner never scans `turns` for a statement's handful of rows.
  for heard in
    select n.id, h.v2v_audio_s from inserted n
    join public.client_heard_latency h
      on h.conversation_id = n.conversation_id and h.agent_ordinal = n.agent_ordinal
    where n.role = 'agent' and n.v2v_audio_s is null
  loop
    update public.turns set v2v_audio_s = heard.v2v_audio_s where id = heard.id;
  end loop;
  return null;
end
$$;

drop trigger turns_take_heard_latency on public.turns;
drop function private.copy_heard_latency_from_report();
create trigger turns_derive_agent_ordinal before insert on public.turns
  for each row when (new.role = 'agent' and new.agent_ordinal is null)
  execute function private.derive_agent_ordinal();
create trigger turns_take_heard_latency after insert on public.turns
  referencing new table as inserted
  for each statement execute function private.take_heard_latency();
