-- History's "words said" filter searches every turn a researcher may read
-- (`ilike '%words%'`): without an index that is a scan of all turns for each search
-- and its count. Trigram indexes answer it (bench/history_browsing.py: 10^6 turns).
-- pg_trgm goes in the `extensions` schema, where hosted Supabase keeps extensions.

create schema if not exists extensions;
create extension if not exists pg_trgm with schema extensions;

create index turns_text_trgm on public.turns using gin (text extensions.gin_trgm_ops);
create index turns_reference_text_trgm on public.turns
  using gin (reference_text extensions.gin_trgm_ops) where reference_text is not null;

-- Under RLS the search cannot use those indexes: `ilike` is not leakproof, so Postgres
-- must apply the turns' policy to every row before it may test the pattern (4.4 s for a
-- word no turn says, at 10^6 turns). This function searches past RLS with the index and
-- applies the same rule itself, in SQL: researchers and admins every conversation's
-- turns, anyone else their own conversations' (as the turns' select policy says).
create function public.conversations_saying(pattern text) returns setof uuid
language sql stable security definer
set search_path = ''
as $$
  select distinct t.conversation_id
  from public.turns t
  where (t.text ilike pattern or t.reference_text ilike pattern)
    and ((select public.has_role('researcher'))
         or exists (select 1 from public.conversations c
                    where c.id = t.conversation_id and c.owner_id = (select auth.uid())))
$$;
comment on function public.conversations_saying(text) is 'Conversations with a turn (or its correction) matching an ilike pattern, among those whose turns the caller may read; for History''s search (bench/history_browsing.py).';
revoke all on function public.conversations_saying(text) from public, anon;
grant execute on function public.conversations_saying(text) to authenticated;
