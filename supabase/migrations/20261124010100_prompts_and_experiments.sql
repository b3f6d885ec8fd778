-- System prompts, their immutable versions, the active pointer, and A/B (multi-arm) experiments.

create table public.system_prompts (
  id uuid primary key default gen_random_uuid(),
  slug text not null unique check (slug ~ '^[a-z0-9][a-z0-9-]{0,63}$'),
  title text not null check (char_length(title) between 1 and 200),
  description text not null default '' check (char_length(description) <= 2000),
  active_version_id uuid,
  created_by uuid references auth.users (id) on delete set null default auth.uid(),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.system_prompts is 'A named system prompt; its text lives in prompt_versions, and active_version_id says which version new sessions get outside experiments.';

create table public.prompt_versions (
  id uuid primary key default gen_random_uuid(),
  prompt_id uuid not null references public.system_prompts (id) on delete cascade,
  version integer not null check (version >= 1),
  body text not null check (char_length(body) between 1 and 20000),
  variables text[] not null default '{}'
    check (array_position(variables, null) is null
           and cardinality(variables) <= 32
           and array_to_string(variables, ',') ~ '^([a-z_][a-z0-9_]{0,39}(,[a-z_][a-z0-9_]{0,39})*)?$'),
  notes text not null default '' check (char_length(notes) <= 2000),
  author_id uuid references auth.users (id) on delete set null default auth.uid(),
  created_at timestamptz not null default now(),
  unique (prompt_id, version),
  unique (id, prompt_id)
);
comment on table public.prompt_versions is 'Immutable prompt texts: a change is a new version (numbered per prompt by trigger); no update or delete, for anyone.';
comment on column public.prompt_versions.variables is 'Names of {{placeholders}} the body uses, filled per session.';

-- The active version must belong to the same prompt.
alter table public.system_prompts
  add constraint system_prompts_active_version_fk
  foreign key (active_version_id, id) references public.prompt_versions (id, prompt_id);

create function public.number_prompt_version() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  -- Lock the prompt row so concurrent inserts number versions one after another.
  perform 1 from public.system_prompts where id = new.prompt_id for update;
  select coalesce(max(version), 0) + 1 into new.version
    from public.prompt_versions where prompt_id = new.prompt_id;
  return new;
end
$$;
create trigger prompt_versions_number before insert on public.prompt_versions
  for each row execute function public.number_prompt_version();

create function public.forbid_prompt_version_change() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  raise exception 'prompt versions are immutable: add a new version instead' using errcode = '42501';
end
$$;
create trigger prompt_versions_immutable before update or delete on public.prompt_versions
  for each row execute function public.forbid_prompt_version_change();

create trigger system_prompts_touch before update on public.system_prompts
  for each row execute function public.touch_updated_at();

create table public.prompt_experiments (
  id uuid primary key default gen_random_uuid(),
  prompt_id uuid not null references public.system_prompts (id) on delete cascade,
  name text not null check (char_length(name) between 1 and 200),
  status text not null default 'draft' check (status in ('draft', 'running', 'stopped')),
  target_roles public.app_role[] not null default '{user,researcher,admin}' check (cardinality(target_roles) >= 1),
  started_at timestamptz,
  stopped_at timestamptz,
  created_by uuid references auth.users (id) on delete set null default auth.uid(),
  created_at timestamptz not null default now(),
  check (status = 'draft' or started_at is not null),
  check (status <> 'stopped' or stopped_at is not null),
  check (stopped_at is null or stopped_at >= started_at)
);
comment on table public.prompt_experiments is 'An A/B or multi-arm test over versions of one prompt; while running, sessions of the target roles are assigned a variant reproducibly (assign_variant).';
create unique index prompt_experiments_one_running on public.prompt_experiments (prompt_id) where status = 'running';

create table public.experiment_variants (
  id uuid primary key default gen_random_uuid(),
  experiment_id uuid not null references public.prompt_experiments (id) on delete cascade,
  prompt_version_id uuid not null references public.prompt_versions (id),
  label text not null check (label ~ '^[A-Za-z0-9][A-Za-z0-9 _-]{0,39}$'),
  weight numeric not null check (weight > 0 and weight <= 1000),
  unique (experiment_id, label)
);
comment on table public.experiment_variants is 'Arms of an experiment: a prompt version and its relative weight.';

create function public.check_variant_prompt() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if not exists (
    select 1 from public.prompt_experiments e
    join public.prompt_versions v on v.prompt_id = e.prompt_id
    where e.id = new.experiment_id and v.id = new.prompt_version_id
  ) then
    raise exception 'a variant must use a version of the experiment''s own prompt' using errcode = '23514';
  end if;
  if (select status from public.prompt_experiments where id = new.experiment_id) <> 'draft' then
    raise exception 'variants are fixed once an experiment has started' using errcode = '42501';
  end if;
  return new;
end
$$;
create trigger experiment_variants_check before insert or update on public.experiment_variants
  for each row execute function public.check_variant_prompt();

-- Reproducible weighted assignment: the same (experiment, unit) always gets the same arm.
create function public.assign_variant(experiment uuid, unit text) returns uuid
language sql stable
set search_path = ''
as $$
  with arms as (
    select id, weight,
           sum(weight) over (order by label) as upto,
           sum(weight) over () as total
    from public.experiment_variants where experiment_id = experiment
  ), point as (
    select ('x' || substr(md5(experiment::text || ':' || unit), 1, 8))::bit(32)::bigint / 4294967296.0 as u
  )
  select arms.id from arms, point where point.u * arms.total < arms.upto order by arms.upto limit 1
$$;
comment on function public.assign_variant(uuid, text) is 'The variant a unit (e.g. a user id) gets in an experiment: a hash of both mapped onto the cumulative weights, so assignment is stable and proportional.';

-- RLS: researchers and admins read prompts and experiments; only admins write them.
alter table public.system_prompts enable row level security;
alter table public.prompt_versions enable row level security;
alter table public.prompt_experiments enable row level security;
alter table public.experiment_variants enable row level security;
revoke all on public.system_prompts, public.prompt_versions, public.prompt_experiments,
  public.experiment_variants from anon;

create policy "researchers read prompts" on public.system_prompts
  for select to authenticated using ((select public.has_role('researcher')));
create policy "admins manage prompts" on public.system_prompts
  for all to authenticated
  using ((select public.has_role('admin'))) with check ((select public.has_role('admin')));

create policy "researchers read prompt versions" on public.prompt_versions
  for select to authenticated using ((select public.has_role('researcher')));
create policy "admins add prompt versions" on public.prompt_versions
  for insert to authenticated with check ((select public.has_role('admin')) and author_id = (select auth.uid()));

create policy "researchers read experiments" on public.prompt_experiments
  for select to authenticated using ((select public.has_role('researcher')));
create policy "admins manage experiments" on public.prompt_experiments
  for all to authenticated
  using ((select public.has_role('admin'))) with check ((select public.has_role('admin')));

create policy "researchers read variants" on public.experiment_variants
  for select to authenticated using ((select public.has_role('researcher')));
create policy "admins manage variants" on public.experiment_variants
  for all to authenticated
  using ((select public.has_role('admin'))) with check ((select public.has_role('admin')));
