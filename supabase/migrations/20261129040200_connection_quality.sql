-- Connection quality as the browser sees it: the Conversation page samples its
-- microphone track's sender statistics (round-trip time, jitter, packets lost and
-- sent) every 2 s and stores each sample against the conversation. Views give each
-- conversation's p50/p95 and, per day and model stack, the median over
-- conversations, for the Analytics page. RLS as for the browser-heard latency.

create table public.connection_samples (
  id bigint generated always as identity primary key,
  conversation_id uuid not null references public.conversations (id) on delete cascade,
  sampled_at timestamptz not null default now(),
  rtt_ms real check (rtt_ms is null or (rtt_ms >= 0 and rtt_ms < 60000)),
  jitter_ms real check (jitter_ms is null or (jitter_ms >= 0 and jitter_ms < 60000)),
  packets_lost bigint check (packets_lost is null or packets_lost >= 0),
  packets_sent bigint check (packets_sent is null or packets_sent >= 0)
);
comment on table public.connection_samples is 'The browser''s sender statistics for a conversation (counters are cumulative), one row per sample.';
create index connection_samples_conversation on public.connection_samples (conversation_id, sampled_at);
alter table public.connection_samples enable row level security;
revoke all on public.connection_samples from anon, authenticated;
grant select, insert on public.connection_samples to authenticated;
create policy "owners report their connection" on public.connection_samples
  for insert to authenticated
  with check (exists (select 1 from public.conversations c
                      where c.id = conversation_id and c.owner_id = (select auth.uid())));
create policy "owners and researchers read connection samples" on public.connection_samples
  for select to authenticated
  using (exists (select 1 from public.conversations c
                 where c.id = conversation_id and c.owner_id = (select auth.uid()))
         or (select public.has_role('researcher')));

create view public.analytics_connection with (security_invoker = on) as
select c.id as conversation_id,
       c.owner_id,
       coalesce(c.model_specs ->> 'name', 'unnamed') as model_stack,
       date_trunc('day', c.started_at) as day,
       count(*) as samples,
       percentile_cont(0.5) within group (order by s.rtt_ms) as rtt_p50_ms,
       percentile_cont(0.95) within group (order by s.rtt_ms) as rtt_p95_ms,
       percentile_cont(0.5) within group (order by s.jitter_ms) as jitter_p50_ms,
       percentile_cont(0.95) within group (order by s.jitter_ms) as jitter_p95_ms,
       -- cumulative counters: the last sample holds the conversation's totals
       max(s.packets_lost)::float8 / nullif(max(s.packets_sent), 0) as loss_rate
from public.conversations c
join public.connection_samples s on s.conversation_id = c.id
group by c.id;
comment on view public.analytics_connection is 'Per conversation: RTT and jitter p50/p95 (ms) and packet loss rate from the browser''s samples.';

create view public.analytics_connection_daily with (security_invoker = on) as
select day, model_stack,
       count(*) as conversations,
       percentile_cont(0.5) within group (order by rtt_p50_ms) as rtt_p50_ms,
       percentile_cont(0.5) within group (order by rtt_p95_ms) as rtt_p95_ms,
       percentile_cont(0.5) within group (order by jitter_p50_ms) as jitter_p50_ms,
       percentile_cont(0.5) within group (order by jitter_p95_ms) as jitter_p95_ms,
       avg(loss_rate) as loss_rate
from public.analytics_connection
group by day, model_stack;
comment on view public.analytics_connection_daily is 'Per day and model stack: the median conversation''s RTT and jitter p50/p95 (ms) and the mean loss rate.';

grant select on public.analytics_connection, public.analytics_connection_daily to authenticated;
revoke all on public.analytics_connection, public.analytics_connection_daily from anon;
