-- Typed usage events and the views the dashboards read (security_invoker: RLS of the
-- underlying tables applies, so a user's dashboard shows only what that user may see).

create table public.analytics_events (
  id bigint generated always as identity primary key,
  user_id uuid default auth.uid() references auth.users (id) on delete cascade,
  kind text not null check (kind in (
    'login', 'logout', 'page_view', 'conversation_started', 'conversation_ended',
    'settings_changed', 'prompt_activated', 'experiment_started', 'experiment_stopped',
    'export_requested', 'eval_run_started')),
  payload jsonb not null default '{}'
    check (jsonb_typeof(payload) = 'object' and octet_length(payload::text) <= 8192),
  occurred_at timestamptz not null default now()
);
comment on table public.analytics_events is 'Typed usage events; payloads are small JSON objects and never hold transcripts, prompts or tokens.';
create index analytics_events_kind_time on public.analytics_events (kind, occurred_at);
create index analytics_events_user_time on public.analytics_events (user_id, occurred_at);

alter table public.analytics_events enable row level security;
revoke all on public.analytics_events from anon, authenticated;
grant select, insert on public.analytics_events to authenticated;
create policy "users record their own events" on public.analytics_events
  for insert to authenticated with check (user_id = (select auth.uid()));
create policy "users read their events, researchers all" on public.analytics_events
  for select to authenticated
  using (user_id = (select auth.uid()) or (select public.has_role('researcher')));

create view public.analytics_turn_latency with (security_invoker = on) as
select t.id as turn_id,
       t.conversation_id,
       c.owner_id,
       c.prompt_version_id,
       c.variant_id,
       coalesce(c.model_specs ->> 'name', 'unnamed') as model_stack,
       t.created_at,
       t.eou_delay_s, t.stt_s, t.llm_ttft_s, t.tts_ttfb_s, t.v2v_s, t.v2v_audio_s,
       t.interrupted
from public.turns t
join public.conversations c on c.id = t.conversation_id
where t.role = 'agent';
comment on view public.analytics_turn_latency is 'Agent turns with their latency, prompt version, experiment arm and model stack.';

create view public.analytics_latency_daily with (security_invoker = on) as
select date_trunc('day', created_at) as day,
       prompt_version_id,
       model_stack,
       count(*) as turns,
       percentile_cont(0.5) within group (order by v2v_s) as v2v_p50_s,
       percentile_cont(0.95) within group (order by v2v_s) as v2v_p95_s,
       avg(eou_delay_s) as eou_delay_mean_s,
       avg(stt_s) as stt_mean_s,
       avg(llm_ttft_s) as llm_ttft_mean_s,
       avg(tts_ttfb_s) as tts_ttfb_mean_s,
       avg(interrupted::int) as interruption_rate
from public.analytics_turn_latency
group by 1, 2, 3;
comment on view public.analytics_latency_daily is 'Per day, prompt version and model stack: voice-to-voice p50/p95, mean per-stage latency, interruption rate.';

create view public.analytics_activity_daily with (security_invoker = on) as
select date_trunc('day', c.started_at) as day,
       count(distinct c.id) as conversations,
       count(t.id) as turns
from public.conversations c
left join public.turns t on t.conversation_id = c.id
group by 1;
comment on view public.analytics_activity_daily is 'Conversations and turns per day.';

grant select on public.analytics_turn_latency, public.analytics_latency_daily,
  public.analytics_activity_daily to authenticated;
revoke all on public.analytics_turn_latency, public.analytics_latency_daily,
  public.analytics_activity_daily from anon;
