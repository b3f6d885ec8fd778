-- Eval runs and samples, conversation exports, and metadata of stored objects.

create table public.eval_runs (
  id uuid primary key default gen_random_uuid(),
  task text not null check (task ~ '^[a-z][a-z0-9_]{0,39}$'),
  task_version text not null check (char_length(task_version) between 1 and 40),
  dataset_id text not null check (char_length(dataset_id) between 1 and 200),
  spec jsonb not null check (jsonb_typeof(spec) = 'object'),
  git_sha text check (git_sha is null or git_sha ~ '^[0-9a-f]{7,40}$'),
  status text not null default 'running' check (status in ('running', 'completed', 'failed', 'interrupted')),
  metrics jsonb not null default '{}' check (jsonb_typeof(metrics) = 'object'),
  started_at timestamptz not null default now(),
  finished_at timestamptz check (finished_at is null or finished_at >= started_at),
  created_by uuid default auth.uid() references auth.users (id) on delete set null
);
comment on table public.eval_runs is 'One evaluation: task and version, dataset id, the model spec snapshot and git sha it ran with, and corpus metrics.';
create index eval_runs_task_started on public.eval_runs (task, started_at);

create table public.eval_samples (
  run_id uuid not null references public.eval_runs (id) on delete cascade,
  sample_id text not null check (char_length(sample_id) between 1 and 300),
  reference text,
  hypothesis text,
  metrics jsonb not null default '{}' check (jsonb_typeof(metrics) = 'object'),
  error text,
  created_at timestamptz not null default now(),
  primary key (run_id, sample_id)
);
comment on table public.eval_samples is 'Per-sample results of an eval run (metrics, hypothesis, or the error that sample met).';

alter table public.eval_runs enable row level security;
alter table public.eval_samples enable row level security;
revoke all on public.eval_runs, public.eval_samples from anon;
create policy "researchers read eval runs" on public.eval_runs
  for select to authenticated using ((select public.has_role('researcher')));
create policy "researchers start eval runs" on public.eval_runs
  for insert to authenticated
  with check ((select public.has_role('researcher')) and created_by = (select auth.uid()));
create policy "authors update their eval runs" on public.eval_runs
  for update to authenticated
  using (created_by = (select auth.uid()) and (select public.has_role('researcher')))
  with check (created_by = (select auth.uid()));
create policy "researchers read eval samples" on public.eval_samples
  for select to authenticated using ((select public.has_role('researcher')));
create policy "authors write samples of their runs" on public.eval_samples
  for insert to authenticated
  with check (exists (select 1 from public.eval_runs r
                      where r.id = run_id and r.created_by = (select auth.uid()))
              and (select public.has_role('researcher')));

create table public.exports (
  id uuid primary key default gen_random_uuid(),
  owner_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  conversation_id uuid references public.conversations (id) on delete cascade,
  format text not null check (format in ('json', 'csv', 'parquet')),
  status text not null default 'pending' check (status in ('pending', 'ready', 'failed')),
  object_path text check (object_path is null or char_length(object_path) <= 512),
  error text,
  created_at timestamptz not null default now(),
  completed_at timestamptz,
  check (status <> 'ready' or object_path is not null)
);
comment on table public.exports is 'Requested exports of a user''s conversations (one, or all when conversation_id is null) and where the file was written.';
alter table public.exports enable row level security;
revoke all on public.exports from anon, authenticated;
grant select, insert on public.exports to authenticated;
create policy "users request and read their exports" on public.exports
  for select to authenticated using (owner_id = (select auth.uid()) or (select public.has_role('admin')));
create policy "users request exports of their own data" on public.exports
  for insert to authenticated
  with check (owner_id = (select auth.uid())
              and (conversation_id is null or public.owns_conversation(conversation_id)));

-- Limits per bucket, shared by the check below and workbench.storage.
create function public.storage_limits(bucket text, out max_bytes bigint, out content_types text[])
language sql immutable
set search_path = ''
as $$
  select limits.max_bytes, limits.content_types from (values
    ('audio', 50 * 1024 * 1024::bigint, array['audio/wav', 'audio/ogg', 'audio/webm', 'audio/flac']),
    ('avatars', 2 * 1024 * 1024::bigint, array['image/png', 'image/jpeg', 'image/webp']),
    ('exports', 200 * 1024 * 1024::bigint, array['application/json', 'text/csv', 'application/vnd.apache.parquet'])
  ) as limits (name, max_bytes, content_types)
  where limits.name = bucket
$$;
comment on function public.storage_limits(text) is 'Size and content-type limits of a storage bucket.';

create table public.storage_objects (
  id uuid primary key default gen_random_uuid(),
  bucket text not null check (bucket in ('audio', 'avatars', 'exports')),
  path text not null,
  owner_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  content_type text not null,
  size_bytes bigint not null check (size_bytes >= 0),
  sha256 text not null check (sha256 ~ '^[0-9a-f]{64}$'),
  created_at timestamptz not null default now(),
  unique (bucket, path),
  -- Keys are namespaced by owner and cannot climb out of it.
  check (split_part(path, '/', 1) = owner_id::text),
  check (path ~ '^[0-9a-f-]{36}(/[A-Za-z0-9_][A-Za-z0-9._-]{0,127}){1,8}$'),
  check (size_bytes <= (public.storage_limits(bucket)).max_bytes),
  check (content_type = any ((public.storage_limits(bucket)).content_types))
);
comment on table public.storage_objects is 'Metadata of objects in the store (audio, avatars, exports); the bytes live behind STORAGE_URL under <bucket>/<owner id>/...';
alter table public.storage_objects enable row level security;
revoke all on public.storage_objects from anon, authenticated;
grant select, insert, delete on public.storage_objects to authenticated;
create policy "owners read their objects, researchers audio, admins all" on public.storage_objects
  for select to authenticated
  using (owner_id = (select auth.uid())
         or (bucket = 'audio' and (select public.has_role('researcher')))
         or (select public.has_role('admin')));
create policy "owners store objects under their own prefix" on public.storage_objects
  for insert to authenticated with check (owner_id = (select auth.uid()));
create policy "owners delete their objects" on public.storage_objects
  for delete to authenticated using (owner_id = (select auth.uid()));
