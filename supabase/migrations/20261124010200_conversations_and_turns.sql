-- Conversations and their turns, written as they complete by the agent (acting for the user).

create table public.conversations (
  id uuid primary key default gen_random_uuid(),
  owner_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  room_name text check (room_name is null or char_length(room_name) <= 200),
  status text not null default 'active' check (status in ('active', 'completed', 'interrupted', 'failed')),
  started_at timestamptz not null default now(),
  ended_at timestamptz check (ended_at is null or ended_at >= started_at),
  prompt_version_id uuid references public.prompt_versions (id),
  experiment_id uuid references public.prompt_experiments (id) on delete set null,
  variant_id uuid references public.experiment_variants (id) on delete set null,
  model_specs jsonb not null default '{}' check (jsonb_typeof(model_specs) = 'object'),
  client_info jsonb not null default '{}' check (jsonb_typeof(client_info) = 'object'),
  check (status = 'active' or ended_at is not null)
);
comment on table public.conversations is 'One voice session: owner, prompt version (or experiment arm) and a snapshot of the model specs it ran with. A crashed session ends as interrupted, never vanishes.';
comment on column public.conversations.model_specs is 'Snapshot of the STT/LLM/TTS specs, keyed by kind, plus "name" of the stack.';
create index conversations_owner_started on public.conversations (owner_id, started_at desc);
create index conversations_started on public.conversations (started_at);
create index conversations_prompt_version on public.conversations (prompt_version_id);

create table public.turns (
  id bigint generated always as identity primary key,
  conversation_id uuid not null references public.conversations (id) on delete cascade,
  idx integer not null check (idx >= 0),
  role text not null check (role in ('user', 'agent')),
  text text not null check (char_length(text) <= 20000),
  started_at timestamptz not null,
  ended_at timestamptz not null,
  eou_delay_s real check (eou_delay_s >= 0),
  stt_s real check (stt_s >= 0),
  llm_ttft_s real check (llm_ttft_s >= 0),
  tts_ttfb_s real check (tts_ttfb_s >= 0),
  v2v_s real check (v2v_s >= 0),
  v2v_audio_s real check (v2v_audio_s >= 0),
  interrupted boolean not null default false,
  false_interruption boolean not null default false,
  audio_path text check (audio_path is null or char_length(audio_path) <= 512),
  filter_verdict jsonb check (filter_verdict is null or jsonb_typeof(filter_verdict) = 'object'),
  reference_text text check (reference_text is null or char_length(reference_text) <= 20000),
  created_at timestamptz not null default now(),
  unique (conversation_id, idx),
  check (ended_at >= started_at)
);
comment on table public.turns is 'One utterance of a conversation, user or agent, with per-stage latency in seconds. Users may add a reference_text (a human correction of the transcript) and nothing else.';
comment on column public.turns.v2v_s is 'Voice-to-voice latency as the framework measured it (end of user speech to first agent audio).';
comment on column public.turns.v2v_audio_s is 'Voice-to-voice latency measured from the audio itself, as the client heard it.';
comment on column public.turns.filter_verdict is 'Content-filter verdict for this turn: {"action": "allow|block|redact", "rule": ..., "score": ...}.';
create index turns_created on public.turns (created_at);

alter table public.conversations enable row level security;
alter table public.turns enable row level security;
revoke all on public.conversations, public.turns from anon, authenticated;
grant select, insert, delete on public.conversations to authenticated;
grant update (status, ended_at, client_info) on public.conversations to authenticated;
grant select, insert on public.turns to authenticated;
grant update (reference_text) on public.turns to authenticated;

create policy "owners and researchers read conversations" on public.conversations
  for select to authenticated
  using (owner_id = (select auth.uid()) or (select public.has_role('researcher')));
create policy "users start their own conversations" on public.conversations
  for insert to authenticated with check (owner_id = (select auth.uid()));
create policy "owners update their conversations" on public.conversations
  for update to authenticated
  using (owner_id = (select auth.uid())) with check (owner_id = (select auth.uid()));
create policy "owners and admins delete conversations" on public.conversations
  for delete to authenticated
  using (owner_id = (select auth.uid()) or (select public.has_role('admin')));

create function public.owns_conversation(conversation uuid) returns boolean
language sql stable security definer
set search_path = ''
as $$
  select exists (select 1 from public.conversations c
                 where c.id = conversation and c.owner_id = (select auth.uid()))
$$;
comment on function public.owns_conversation(uuid) is 'True if the caller owns the conversation (used by turn policies).';

create policy "owners and researchers read turns" on public.turns
  for select to authenticated
  using ((select public.has_role('researcher')) or public.owns_conversation(conversation_id));
create policy "owners add turns" on public.turns
  for insert to authenticated with check (public.owns_conversation(conversation_id));
create policy "owners correct their transcripts" on public.turns
  for update to authenticated
  using (public.owns_conversation(conversation_id)) with check (public.owns_conversation(conversation_id));
