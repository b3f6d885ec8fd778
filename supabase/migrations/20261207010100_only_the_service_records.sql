-- Conversations and turns are what the agent heard and said: only the service role
-- (the agent's recorder, acting for the room's owner) writes them. A signed-in user
-- could insert conversations and turns of their own, i.e. fabricate what a study
-- records; now they read, correct a transcript, end a conversation and report what
-- their browser heard (the updates granted before), but insert nothing.

drop policy "users start their own conversations" on public.conversations;
drop policy "owners add turns" on public.turns;
revoke insert on public.conversations from authenticated;
revoke insert on public.turns from authenticated;
