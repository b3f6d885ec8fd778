-- Latency per day, prompt version and model stack without aggregating every turn at
-- query time. `analytics_latency_daily` aggregated all agent turns on each read (~1 s
-- at 10^6 turns); it now reads `private.latency_rollup`, whose groups are exact
-- (percentile_cont over the group's turns, as before) and recomputed only when one of
-- their turns changed:
--   * statement-level triggers on turns (and on conversations whose stack or prompt
--     version changes) note which (day, owner) groups are stale, one row per pair
--     per statement, so a bulk insert pays one small insert, not one per turn;
--   * each read first recomputes the stale groups (under an advisory lock), then
--     returns the rows the caller may see.
-- A user sees their own turns' groups and a researcher every turn's, as RLS on the
-- base tables gives them: groups are kept per owner and over all owners (owner_id
-- null), since percentiles do not add up across owners. Days are UTC days.

create table private.latency_rollup (
  day timestamptz not null,
  owner_id uuid,
  prompt_version_id uuid,
  model_stack text not null,
  turns bigint not null,
  v2v_p50_s double precision,
  v2v_p95_s double precision,
  eou_delay_mean_s double precision,
  stt_mean_s double precision,
  llm_ttft_mean_s double precision,
  tts_ttfb_mean_s double precision,
  interruption_rate numeric
);
create unique index latency_rollup_group on private.latency_rollup
  (day, owner_id, prompt_version_id, model_stack) nulls not distinct;
comment on table private.latency_rollup is 'analytics_latency_daily precomputed per (UTC day, owner or all owners when null, prompt version, model stack).';

create table private.latency_rollup_stale (
  day timestamptz not null,
  owner_id uuid not null,
  primary key (day, owner_id)
);
comment on table private.latency_rollup_stale is '(day, owner) groups of latency_rollup to recompute before the next read.';
-- No API role has a grant on either; RLS without policies denies them all the same.
alter table private.latency_rollup enable row level security;
alter table private.latency_rollup_stale enable row level security;

create function private.note_stale_latency() returns trigger
language plpgsql security definer
set search_path = ''
set timezone = 'UTC'
as $$
begin
  if tg_op in ('INSERT', 'UPDATE') then
    insert into private.latency_rollup_stale (day, owner_id)
    select distinct date_trunc('day', n.created_at), c.owner_id
    from new_turns n join public.conversations c on c.id = n.conversation_id
    where n.role = 'agent'
    on conflict do nothing;
  end if;
  if tg_op in ('DELETE', 'UPDATE') then
    insert into private.latency_rollup_stale (day, owner_id)
    select distinct date_trunc('day', o.created_at), c.owner_id
    from old_turns o join public.conversations c on c.id = o.conversation_id
    where o.role = 'agent'
    on conflict do nothing;
  end if;
  return null;
end
$$;
create trigger turns_latency_stale_insert after insert on public.turns
  referencing new table as new_turns
  for each statement execute function private.note_stale_latency();
create trigger turns_latency_stale_update after update on public.turns
  referencing new table as new_turns old table as old_turns
  for each statement execute function private.note_stale_latency();
create trigger turns_latency_stale_delete after delete on public.turns
  referencing old table as old_turns
  for each statement execute function private.note_stale_latency();

-- A conversation whose stack or prompt version changes moves its turns to other groups.
create function private.note_stale_conversation() returns trigger
language plpgsql security definer
set search_path = ''
set timezone = 'UTC'
as $$
begin
  insert into private.latency_rollup_stale (day, owner_id)
  select distinct date_trunc('day', t.created_at), o.owner_id
  from old_conversations o
  join new_conversations n on n.id = o.id
  join public.turns t on t.conversation_id = o.id
  where t.role = 'agent'
    and (n.model_specs ->> 'name' is distinct from o.model_specs ->> 'name'
         or n.prompt_version_id is distinct from o.prompt_version_id)
  on conflict do nothing;
  return null;
end
$$;
create trigger conversations_latency_stale after update on public.conversations
  referencing old table as old_conversations new table as new_conversations
  for each statement execute function private.note_stale_conversation();

-- A deleted conversation takes its turns along (cascade); by the time the turns'
-- statement trigger runs the conversation, and so its owner, is gone: note them first.
create function private.note_stale_deleted_conversation() returns trigger
language plpgsql security definer
set search_path = ''
set timezone = 'UTC'
as $$
begin
  insert into private.latency_rollup_stale (day, owner_id)
  select distinct date_trunc('day', t.created_at), old.owner_id
  from public.turns t
  where t.conversation_id = old.id and t.role = 'agent'
  on conflict do nothing;
  return old;
end
$$;
create trigger conversations_latency_stale_delete before delete on public.conversations
  for each row execute function private.note_stale_deleted_conversation();

create function private.refresh_latency_rollup() returns void
language plpgsql security definer
set search_path = ''
set timezone = 'UTC'
as $$
begin
  if not exists (select 1 from private.latency_rollup_stale) then
    return;
  end if;
  -- One refresher at a time; a reader that waited finds the work done.
  perform pg_advisory_xact_lock(hashtext('private.refresh_latency_rollup'));
  create temporary table if not exists stale (day timestamptz, owner_id uuid) on commit drop;
  delete from pg_temp.stale;
  with taken as (delete from private.latency_rollup_stale returning day, owner_id)
  insert into pg_temp.stale select distinct day, owner_id from taken;
  if not exists (select 1 from pg_temp.stale) then
    return;
  end if;
  delete from private.latency_rollup r
  using pg_temp.stale s
  where r.day = s.day and (r.owner_id = s.owner_id or r.owner_id is null);
  -- each stale owner's groups of the day
  insert into private.latency_rollup
  select date_trunc('day', t.created_at), c.owner_id, c.prompt_version_id,
         coalesce(c.model_specs ->> 'name', 'unnamed'), count(*),
         percentile_cont(0.5) within group (order by t.v2v_s),
         percentile_cont(0.95) within group (order by t.v2v_s),
         avg(t.eou_delay_s), avg(t.stt_s), avg(t.llm_ttft_s), avg(t.tts_ttfb_s),
         avg(t.interrupted::int)
  from public.turns t
  join public.conversations c on c.id = t.conversation_id
  join pg_temp.stale s on s.owner_id = c.owner_id
              and t.created_at >= s.day and t.created_at < s.day + interval '1 day'
  where t.role = 'agent'
  group by 1, 2, 3, 4;
  -- the all-owners groups of each stale day, rebuilt whole
  insert into private.latency_rollup
  select date_trunc('day', t.created_at), null, c.prompt_version_id,
         coalesce(c.model_specs ->> 'name', 'unnamed'), count(*),
         percentile_cont(0.5) within group (order by t.v2v_s),
         percentile_cont(0.95) within group (order by t.v2v_s),
         avg(t.eou_delay_s), avg(t.stt_s), avg(t.llm_ttft_s), avg(t.tts_ttfb_s),
         avg(t.interrupted::int)
  from (select distinct day from pg_temp.stale) d
  join public.turns t on t.created_at >= d.day and t.created_at < d.day + interval '1 day'
  join public.conversations c on c.id = t.conversation_id
  where t.role = 'agent'
  group by 1, 3, 4;
end
$$;
revoke all on function private.refresh_latency_rollup() from public;

-- The rows of the rollup the caller may see, fresh: a researcher's are over all
-- owners, anyone else's over their own conversations. In `public` so that no API
-- role needs the private schema; it returns nothing a caller could not aggregate
-- from the base tables under RLS.
create function public.latency_daily_rows()
returns table (day timestamptz, prompt_version_id uuid, model_stack text, turns bigint,
               v2v_p50_s double precision, v2v_p95_s double precision,
               eou_delay_mean_s double precision, stt_mean_s double precision,
               llm_ttft_mean_s double precision, tts_ttfb_mean_s double precision,
               interruption_rate numeric)
language plpgsql security definer
set search_path = ''
as $$
begin
  perform private.refresh_latency_rollup();
  return query
    select r.day, r.prompt_version_id, r.model_stack, r.turns, r.v2v_p50_s, r.v2v_p95_s,
           r.eou_delay_mean_s, r.stt_mean_s, r.llm_ttft_mean_s, r.tts_ttfb_mean_s,
           r.interruption_rate
    from private.latency_rollup r
    where case when (select public.has_role('researcher')) then r.owner_id is null
               else r.owner_id = (select auth.uid()) end;
end
$$;
revoke all on function public.latency_daily_rows() from public, anon;
grant execute on function public.latency_daily_rows() to authenticated, service_role;

create or replace view public.analytics_latency_daily with (security_invoker = on) as
select * from public.latency_daily_rows();
comment on view public.analytics_latency_daily is 'Per UTC day, prompt version and model stack: voice-to-voice p50/p95, mean per-stage latency, interruption rate (from private.latency_rollup, fresh at every read).';

-- The groups of the turns already stored.
insert into private.latency_rollup_stale (day, owner_id)
select distinct date_trunc('day', t.created_at at time zone 'UTC') at time zone 'UTC', c.owner_id
from public.turns t join public.conversations c on c.id = t.conversation_id
where t.role = 'agent'
on conflict do nothing;
