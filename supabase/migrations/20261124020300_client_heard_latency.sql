-- Voice-to-voice as the browser heard it: the page measures, for each agent reply,
-- the time from the end of the user's voice on the microphone to the first audible
-- agent audio, and reports it with the reply's ordinal (0 = the greeting). The
-- agent writes its turns on its own schedule, so whichever arrives second fills
-- turns.v2v_audio_s of the ordinal-th agent turn: order, not clocks, pairs them
-- (a browser's clock is not the server's).

create table public.client_heard_latency (
  conversation_id uuid not null references public.conversations (id) on delete cascade,
  agent_ordinal integer not null check (agent_ordinal >= 0),
  v2v_audio_s real not null check (v2v_audio_s > 0 and v2v_audio_s < 120),
  created_at timestamptz not null default now(),
  primary key (conversation_id, agent_ordinal)
);
comment on table public.client_heard_latency is 'Voice-to-voice per agent reply as the browser heard it (ordinal among the conversation''s agent turns); copied onto turns.v2v_audio_s.';
alter table public.client_heard_latency enable row level security;
revoke all on public.client_heard_latency from anon;
create policy "owners report what they heard" on public.client_heard_latency
  for insert to authenticated
  with check (exists (select 1 from public.conversations c
                      where c.id = conversation_id and c.owner_id = (select auth.uid())));
create policy "owners and researchers read heard latency" on public.client_heard_latency
  for select to authenticated
  using (exists (select 1 from public.conversations c
                 where c.id = conversation_id and c.owner_id = (select auth.uid()))
         or (select public.has_role('researcher')));

-- The ordinal-th agent turn of a conversation (by idx), if written yet.
create function private.agent_turn_at(conversation uuid, ordinal integer) returns bigint
language sql stable security definer set search_path = ''
as $$
  select t.id from public.turns t
  where t.conversation_id = conversation and t.role = 'agent'
  order by t.idx offset ordinal limit 1
$$;

create function private.copy_heard_latency_to_turn() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  update public.turns set v2v_audio_s = new.v2v_audio_s
  where id = private.agent_turn_at(new.conversation_id, new.agent_ordinal) and v2v_audio_s is null;
  return new;
end
$$;
create trigger client_heard_latency_to_turn after insert on public.client_heard_latency
  for each row execute function private.copy_heard_latency_to_turn();

create function private.copy_heard_latency_from_report() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  if new.role = 'agent' and new.v2v_audio_s is null then
    select h.v2v_audio_s into new.v2v_audio_s
    from public.client_heard_latency h
    where h.conversation_id = new.conversation_id
      and h.agent_ordinal = (select count(*) from public.turns t
                             where t.conversation_id = new.conversation_id and t.role = 'agent'
                               and t.idx < new.idx);
  end if;
  return new;
end
$$;
create trigger turns_take_heard_latency before insert on public.turns
  for each row execute function private.copy_heard_latency_from_report();
