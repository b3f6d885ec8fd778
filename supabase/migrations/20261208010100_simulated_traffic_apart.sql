-- Simulated callers apart from people in Analytics. Their conversations were counted as
-- the service's own traffic: a suite of simulated calls moved the voice-to-voice
-- percentiles, the stage breakdown and the activity counts a researcher reads as
-- what participants met. Simulation accounts (`python -m evals simulate`) are marked
-- on their profile; the rollups keep their traffic apart; the views return both kinds
-- with a `simulated` column, and Analytics shows people's unless asked otherwise.

alter table public.profiles add column simulated boolean not null default false;
comment on column public.profiles.simulated is 'A simulated caller''s account (evals/simulation/accounts.py): its conversations are simulated traffic. Set by the service only.';
-- The accounts made before this column (their domain is the simulation's own).
update public.profiles p set simulated = true
from auth.users u
where u.id = p.id and u.email like '%@simulation.workbench.local';

alter table private.latency_rollup add column simulated boolean not null default false;
drop index private.latency_rollup_group;
create unique index latency_rollup_group on private.latency_rollup
  (day, owner_id, prompt_version_id, model_stack, simulated) nulls not distinct;

create or replace function private.refresh_latency_rollup() returns void
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
    (day, owner_id, prompt_version_id, model_stack, simulated, turns, v2v_p50_s, v2v_p95_s,
     eou_delay_mean_s, stt_mean_s, llm_ttft_mean_s, tts_ttfb_mean_s, interruption_rate)
  select date_trunc('day', t.created_at), c.owner_id, c.prompt_version_id,
         coalesce(c.model_specs ->> 'name', 'unnamed'), coalesce(p.simulated, false),
         count(*) filter (where t.role = 'agent'),
         percentile_cont(0.5) within group (order by t.v2v_s) filter (where t.role = 'agent'),
         percentile_cont(0.95) within group (order by t.v2v_s) filter (where t.role = 'agent'),
         avg(t.eou_delay_s) filter (where t.role = 'user'),
         avg(t.stt_s) filter (where t.role = 'user'),
         avg(t.llm_ttft_s) filter (where t.role = 'agent'),
         avg(t.tts_ttfb_s) filter (where t.role = 'agent'),
         avg(t.interrupted::int) filter (where t.role = 'agent')
  from public.turns t
  join public.conversations c on c.id = t.conversation_id
  left join public.profiles p on p.id = c.owner_id
  join pg_temp.stale s on s.owner_id = c.owner_id
              and t.created_at >= s.day and t.created_at < s.day + interval '1 day'
  group by 1, 2, 3, 4, 5
  having count(*) filter (where t.role = 'agent') > 0;
  -- the all-owners groups of each stale day, people's and simulated callers' apart
  insert into private.latency_rollup
    (day, owner_id, prompt_version_id, model_stack, simulated, turns, v2v_p50_s, v2v_p95_s,
     eou_delay_mean_s, stt_mean_s, llm_ttft_mean_s, tts_ttfb_mean_s, interruption_rate)
  select date_trunc('day', t.created_at), null, c.prompt_version_id,
         coalesce(c.model_specs ->> 'name', 'unnamed'), coalesce(p.simulated, false),
         count(*) filter (where t.role = 'agent'),
         percentile_cont(0.5) within group (order by t.v2v_s) filter (where t.role = 'agent'),
         percentile_cont(0.95) within group (order by t.v2v_s) filter (where t.role = 'agent'),
         avg(t.eou_delay_s) filter (where t.role = 'user'),
         avg(t.stt_s) filter (where t.role = 'user'),
         avg(t.llm_ttft_s) filter (where t.role = 'agent'),
         avg(t.tts_ttfb_s) filter (where t.role = 'agent'),
         avg(t.interrupted::int) filter (where t.role = 'agent')
  from (select distinct day from pg_temp.stale) d
  join public.turns t on t.created_at >= d.day and t.created_at < d.day + interval '1 day'
  join public.conversations c on c.id = t.conversation_id
  left join public.profiles p on p.id = c.owner_id
  group by 1, 3, 4, 5
  having count(*) filter (where t.role = 'agent') > 0;
end
$$;

-- An account marked (or unmarked) afterwards takes its days' turns along.
create function private.note_stale_simulated() returns trigger
language plpgsql security definer
set search_path = ''
set timezone = 'UTC'
as $$
begin
  insert into private.latency_rollup_stale (day, owner_id)
  select distinct date_trunc('day', t.created_at), c.owner_id
  from public.turns t join public.conversations c on c.id = t.conversation_id
  where c.owner_id = new.id
  on conflict do nothing;
  return null;
end
$$;
revoke execute on function private.note_stale_simulated() from public, anon, authenticated;
create trigger profiles_simulated_latency after update of simulated on public.profiles
  for each row when (old.simulated is distinct from new.simulated)
  execute function private.note_stale_simulated();

drop view public.analytics_latency_daily;
drop function public.latency_daily_rows();
create function public.latency_daily_rows()
returns table (day timestamptz, prompt_version_id uuid, model_stack text, simulated boolean,
               turns bigint, v2v_p50_s double precision, v2v_p95_s double precision,
               eou_delay_mean_s double precision, stt_mean_s double precision,
               llm_ttft_mean_s double precision, tts_ttfb_mean_s double precision,
               interruption_rate numeric)
language plpgsql security definer
set search_path = ''
as $$
begin
  perform private.refresh_latency_rollup();
  return query
    select r.day, r.prompt_version_id, r.model_stack, r.simulated, r.turns, r.v2v_p50_s,
           r.v2v_p95_s, r.eou_delay_mean_s, r.stt_mean_s, r.llm_ttft_mean_s, r.tts_ttfb_mean_s,
           r.interruption_rate
    from private.latency_rollup r
    where case when (select public.has_role('researcher')) then r.owner_id is null
               else r.owner_id = (select auth.uid()) end;
end
$$;
revoke all on function public.latency_daily_rows() from public, anon;
grant execute on function public.latency_daily_rows() to authenticated, service_role;
create view public.analytics_latency_daily with (security_invoker = on) as
select * from public.latency_daily_rows();
comment on view public.analytics_latency_daily is 'Per UTC day, prompt version, model stack and kind of caller (people, or simulated when `simulated`): voice-to-voice p50/p95, mean per-stage latency, interruption rate (from private.latency_rollup, fresh at every read).';
grant select on public.analytics_latency_daily to authenticated;
revoke all on public.analytics_latency_daily from anon;

drop view public.analytics_activity_daily;
drop function public.activity_daily_rows();
create function public.activity_daily_rows()
returns table (day timestamptz, simulated boolean, conversations bigint, turns bigint)
language plpgsql security definer
set search_path = ''
as $$
begin
  if (select public.has_role('researcher')) then
    return query
      select a.day, coalesce(p.simulated, false), sum(a.conversations)::bigint,
             sum(a.turns)::bigint
      from private.activity_rollup a left join public.profiles p on p.id = a.owner_id
      group by 1, 2 having sum(a.conversations) > 0;
  else
    return query
      select a.day, coalesce(p.simulated, false), a.conversations, a.turns
      from private.activity_rollup a left join public.profiles p on p.id = a.owner_id
      where a.owner_id = (select auth.uid()) and a.conversations > 0;
  end if;
end
$$;
revoke all on function public.activity_daily_rows() from public, anon;
grant execute on function public.activity_daily_rows() to authenticated, service_role;
create view public.analytics_activity_daily with (security_invoker = on) as
select * from public.activity_daily_rows();
comment on view public.analytics_activity_daily is 'Conversations and turns per UTC day of the conversation start and kind of caller (from private.activity_rollup).';
grant select on public.analytics_activity_daily to authenticated;
revoke all on public.analytics_activity_daily from anon;

-- Every stored day again, with its callers apart.
insert into private.latency_rollup_stale (day, owner_id)
select distinct date_trunc('day', t.created_at at time zone 'UTC') at time zone 'UTC', c.owner_id
from public.turns t join public.conversations c on c.id = t.conversation_id
on conflict do nothing;
