-- History's "words said" filter searches every turn a researcher may read
-- (`ilike '%words%'`): without an index that is a scan of all turns for each search
-- and its count. Trigram indexes answer it (bench/history_browsing.py: 10^6 turns).
-- pg_trgm goes in the `extensions` schema, where hosted Supabase keeps extensions.

create schema if not exists extensions;
create extension if not exists pg_trgm with schema extensions;

create index turns_text_trgm on public.turns using gin (text extensions.gin_trgm_ops);
create index turns_reference_text_trgm on public.turns
  using gin (reference_text extensions.gin_trgm_ops) where reference_text is not null;
