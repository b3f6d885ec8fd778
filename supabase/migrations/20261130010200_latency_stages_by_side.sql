-- The stage breakdown lacked its first two stages: the end-of-utterance delay and the
-- STT time are measured on the user's turn (the agent records them there), but the
-- rollup averaged them over agent turns only, where they are empty, so "where the
-- time goes" showed only the LLM and TTS. Now the user's side of each stage comes
-- from user turns and the agent's (voice to voice, LLM, TTS, interruptions) from
-- agent turns; a day counts for a group once it has an agent turn. User turns now
-- mark their day stale too, and every stored day is rebuilt once.

create or replace function private.note_stale_latency() returns trigger
language plpgsql security definer
set search_path = ''
set timezone = 'UTC'
as $$
begin
  if tg_op in ('INSERT', 'UPDATE') then
    insert into private.latency_rollup_stale (day, owner_id)
    select distinct date_trunc('day', n.created_at), c.owner_id
    from new_turns n join public.conversations c on c.id = n.conversation_id
    on conflict do nothing;
  end if;
  if tg_op in ('DELETE', 'UPDATE') then
    insert into private.latency_rollup_stale (day, owner_id)
    select distinct date_trunc('day', o.created_at), c.owner_id
    from old_turns o join public.conversations c on c.id = o.conversation_id
    on conflict do nothing;
  end if;
  return null;
end
$$;

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
  select date_trunc('day', t.created_at), c.owner_id, c.prompt_version_id,
         coalesce(c.model_specs ->> 'name', 'unnamed'), count(*) filter (where t.role = 'agent'),
         percentile_cont(0.5) within group (order by t.v2v_s) filter (where t.role = 'agent'),
         percentile_cont(0.95) within group (order by t.v2v_s) filter (where t.role = 'agent'),
         avg(t.eou_delay_s) filter (where t.role = 'user'),
         avg(t.stt_s) filter (where t.role = 'user'),
         avg(t.llm_ttft_s) filter (where t.role = 'agent'),
         avg(t.tts_ttfb_s) filter (where t.role = 'agent'),
         avg(t.interrupted::int) filter (where t.role = 'agent')
  from public.turns t
  join public.conversations c on c.id = t.conversation_id
  join pg_temp.stale s on s.owner_id = c.owner_id
              and t.created_at >= s.day and t.created_at < s.day + interval '1 day'
  group by 1, 2, 3, 4
  having count(*) filter (where t.role = 'agent') > 0;
  -- the all-owners groups of each stale day, rebuilt whole
  insert into private.latency_rollup
  select date_trunc('day', t.created_at), null, c.prompt_version_id,
         coalesce(c.model_specs ->> 'name', 'unnamed'), count(*) filter (where t.role = 'agent'),
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
  group by 1, 3, 4
  having count(*) filter (where t.role = 'agent') > 0;
end
$$;

insert into private.latency_rollup_stale (day, owner_id)
select distinct date_trunc('day', t.created_at at time zone 'UTC') at time zone 'UTC', c.owner_id
from public.turns t join public.conversations c on c.id = t.conversation_id
on conflict do nothing;
