-- Supabase's role model and schemas, as Supabase's Postgres image creates them.
-- Applied by `workbench stack up` before GoTrue's own migrations and the app's
-- migrations under supabase/migrations/. Idempotent: safe on every `up`.
-- Passwords are set separately by the stack from .local/secrets.json.

do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'supabase_auth_admin') then
    create role supabase_auth_admin login noinherit createrole;
  end if;
end
$$;

-- The API connects as `authenticator` and switches to the caller's role.
grant anon, authenticated, service_role to authenticator;

create schema if not exists extensions;
grant usage on schema extensions to anon, authenticated, service_role;
create extension if not exists pgcrypto with schema extensions;
create extension if not exists "uuid-ossp" with schema extensions;

-- GoTrue owns the auth schema and runs its own migrations in it.
create schema if not exists auth authorization supabase_auth_admin;
grant create, connect on database postgres to supabase_auth_admin;
alter role supabase_auth_admin set search_path = auth;
grant usage on schema auth to anon, authenticated, service_role;

-- GoTrue's base tables, as Supabase's Postgres image pre-creates them, with
-- GoTrue's first migrations recorded as applied: GoTrue (when it runs) adds
-- its later migrations on top, and the app can reference auth.users even on
-- a machine where GoTrue cannot run.
create table if not exists auth.users (
  instance_id uuid,
  id uuid primary key,
  aud varchar(255),
  role varchar(255),
  email varchar(255) unique,
  encrypted_password varchar(255),
  confirmed_at timestamptz,
  invited_at timestamptz,
  confirmation_token varchar(255),
  confirmation_sent_at timestamptz,
  recovery_token varchar(255),
  recovery_sent_at timestamptz,
  email_change_token varchar(255),
  email_change varchar(255),
  email_change_sent_at timestamptz,
  last_sign_in_at timestamptz,
  raw_app_meta_data jsonb,
  raw_user_meta_data jsonb,
  is_super_admin boolean,
  created_at timestamptz,
  updated_at timestamptz
);
create index if not exists users_instance_id_email_idx on auth.users (instance_id, email);
create index if not exists users_instance_id_idx on auth.users (instance_id);
create table if not exists auth.refresh_tokens (
  instance_id uuid,
  id bigserial primary key,
  token varchar(255),
  user_id varchar(255),
  revoked boolean,
  created_at timestamptz,
  updated_at timestamptz
);
create index if not exists refresh_tokens_instance_id_idx on auth.refresh_tokens (instance_id);
create index if not exists refresh_tokens_instance_id_user_id_idx on auth.refresh_tokens (instance_id, user_id);
create index if not exists refresh_tokens_token_idx on auth.refresh_tokens (token);
create table if not exists auth.instances (
  id uuid primary key,
  uuid uuid,
  raw_base_config text,
  created_at timestamptz,
  updated_at timestamptz
);
create table if not exists auth.audit_log_entries (
  instance_id uuid,
  id uuid primary key,
  payload json,
  created_at timestamptz
);
create index if not exists audit_logs_instance_id_idx on auth.audit_log_entries (instance_id);
create table if not exists auth.schema_migrations (version varchar(255) primary key);
insert into auth.schema_migrations (version)
values ('20171026211738'), ('20171026211808'), ('20171026211834'), ('20180103212743'),
       ('20180108183307'), ('20180119214651'), ('20180125194653')
on conflict do nothing;
alter table auth.users owner to supabase_auth_admin;
alter table auth.refresh_tokens owner to supabase_auth_admin;
alter table auth.instances owner to supabase_auth_admin;
alter table auth.audit_log_entries owner to supabase_auth_admin;
alter table auth.schema_migrations owner to supabase_auth_admin;

-- Helpers RLS policies call; they read the claims a request session sets
-- (`select set_config('request.jwt.claims', ..., true)`), exactly as under
-- PostgREST. Owned by supabase_auth_admin so GoTrue's migrations may replace them.
create or replace function auth.jwt() returns jsonb
language sql stable
as $$
  select coalesce(nullif(current_setting('request.jwt.claims', true), ''), '{}')::jsonb
$$;

create or replace function auth.uid() returns uuid
language sql stable
as $$
  select nullif(auth.jwt() ->> 'sub', '')::uuid
$$;

create or replace function auth.role() returns text
language sql stable
as $$
  select nullif(auth.jwt() ->> 'role', '')
$$;

create or replace function auth.email() returns text
language sql stable
as $$
  select nullif(auth.jwt() ->> 'email', '')
$$;

alter function auth.jwt() owner to supabase_auth_admin;
alter function auth.uid() owner to supabase_auth_admin;
alter function auth.role() owner to supabase_auth_admin;
alter function auth.email() owner to supabase_auth_admin;
grant execute on function auth.jwt(), auth.uid(), auth.role(), auth.email()
  to anon, authenticated, service_role;

-- Supabase's defaults: API roles may use public objects; RLS on every table
-- (enforced by each migration) decides which rows.
grant usage on schema public to anon, authenticated, service_role;
-- Not ALL for the API roles: RLS does not govern TRUNCATE, REFERENCES or TRIGGER,
-- and bumping a sequence is no one's business but the service's. (Revoked
-- explicitly too, for clusters whose defaults granted ALL before.)
alter default privileges in schema public grant all on tables to service_role;
alter default privileges in schema public grant all on sequences to service_role;
alter default privileges in schema public grant select, insert, update, delete on tables to anon, authenticated;
alter default privileges in schema public revoke truncate, references, trigger on tables from anon, authenticated;
alter default privileges in schema public grant usage, select on sequences to anon, authenticated;
alter default privileges in schema public revoke update on sequences from anon, authenticated;
alter default privileges in schema public grant execute on functions to anon, authenticated, service_role;

create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (
  version text primary key,
  name text not null,
  checksum_sha256 text not null,
  applied_at timestamptz not null default now()
);
comment on table supabase_migrations.schema_migrations is
  'App migrations applied from supabase/migrations/, with a checksum so an edited applied migration is caught.';
