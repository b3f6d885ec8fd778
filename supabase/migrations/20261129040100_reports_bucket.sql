-- Eval reports (`python -m evals report`): self-contained HTML files in their own bucket.
-- Shared results: researchers read every report, as they read every eval run.

create or replace function public.storage_limits(bucket text, out max_bytes bigint, out content_types text[])
language sql immutable
set search_path = ''
as $$
  select limits.max_bytes, limits.content_types from (values
    ('audio', 50 * 1024 * 1024::bigint, array['audio/wav', 'audio/ogg', 'audio/webm', 'audio/flac']),
    ('avatars', 2 * 1024 * 1024::bigint, array['image/png', 'image/jpeg', 'image/webp']),
    ('exports', 200 * 1024 * 1024::bigint, array['application/json', 'text/csv', 'application/vnd.apache.parquet']),
    ('reports', 20 * 1024 * 1024::bigint, array['text/html'])
  ) as limits (name, max_bytes, content_types)
  where limits.name = bucket
$$;

alter table public.storage_objects drop constraint storage_objects_bucket_check;
alter table public.storage_objects add constraint storage_objects_bucket_check
  check (bucket in ('audio', 'avatars', 'exports', 'reports'));

drop policy "owners read their objects, researchers audio, admins all" on public.storage_objects;
create policy "owners read their objects, researchers audio and reports, admins all"
  on public.storage_objects for select to authenticated
  using (owner_id = (select auth.uid())
         or (bucket in ('audio', 'reports') and (select public.has_role('researcher')))
         or (select public.has_role('admin')));
-- Only researchers write reports (they are the ones who can read eval runs).
create policy "reports are written by researchers" on public.storage_objects
  as restrictive for insert to authenticated
  with check (bucket <> 'reports' or (select public.has_role('researcher')));
