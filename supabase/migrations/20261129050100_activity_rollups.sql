-- Conversations and turns per day without counting every row at read time (1.4 s at
-- 10^6 turns). Counts add up, so they are kept exactly and incrementally per (UTC day
-- of the conversation's start, owner) by statement triggers; a researcher's view sums
-- the owners, anyone else's is their own row, as RLS on the base tables gives them.

create table private.activity_rollup (
  day timestamptz not null,
  owner_id uuid not null,
  conversations bigint not null default 0,
  turns bigint not null default 0,
  primary key (day, owner_id)
);
comment on table private.activity_rollup is 'analytics_activity_daily kept per (UTC day of the conversation start, owner).';
alter table private.activity_rollup enable row level security;

create function private.count_activity(
  rows_day timestamptz, rows_owner uuid, conversations bigint, turns bigint
) returns void
language sql security definer
set search_path = ''
as $$
  insert into private.activity_rollup as a (day, owner_id, conversations, turns)
  values (rows_day, rows_owner, conversations, turns)
  on conflict (day, owner_id) do update
    set conversations = a.conversations + excluded.conversations,
        turns = a.turns + excluded.turns;
$$;
revoke all on function private.count_activity(timestamptz, uuid, bigint, bigint) from public;

create function private.activity_conversations() returns trigger
language plpgsql security definer
set search_path = ''
set timezone = 'UTC'
as $$
begin
  if tg_op = 'INSERT' then
    perform private.count_activity(day, owner_id, n, 0)
    from (select date_trunc('day', started_at) as day, owner_id, count(*) as n
          from new_conversations group by 1, 2) g;
  elsif tg_op = 'UPDATE' then
    -- a conversation moved to another day or owner takes its turns along
    perform private.count_activity(day, owner_id, n, t)
    from (select date_trunc('day', x.started_at) as day, x.owner_id, sum(x.sign) as n,
                 sum(x.sign * (select count(*) from public.turns where conversation_id = x.id))::bigint as t
          from (select o.id, o.started_at, o.owner_id, -1 as sign
                from old_conversations o join new_conversations n on n.id = o.id
                where (date_trunc('day', o.started_at), o.owner_id)
                      is distinct from (date_trunc('day', n.started_at), n.owner_id)
                union all
                select n.id, n.started_at, n.owner_id, 1
                from old_conversations o join new_conversations n on n.id = o.id
                where (date_trunc('day', o.started_at), o.owner_id)
                      is distinct from (date_trunc('day', n.started_at), n.owner_id)) x
          group by 1, 2) g;
  end if;
  return null;
end
$$;
create trigger conversations_activity_insert after insert on public.conversations
  referencing new table as new_conversations
  for each statement execute function private.activity_conversations();
create trigger conversations_activity_update after update on public.conversations
  referencing old table as old_conversations new table as new_conversations
  for each statement execute function private.activity_conversations();

-- A deleted conversation takes its turns along (cascade); the turns' trigger then no
-- longer finds the conversation, so the conversation's row counts both, first.
create function private.activity_deleted_conversation() returns trigger
language plpgsql security definer
set search_path = ''
set timezone = 'UTC'
as $$
begin
  perform private.count_activity(
    date_trunc('day', old.started_at), old.owner_id, -1,
    -(select count(*) from public.turns where conversation_id = old.id));
  return old;
end
$$;
create trigger conversations_activity_delete before delete on public.conversations
  for each row execute function private.activity_deleted_conversation();

create function private.activity_turns() returns trigger
language plpgsql security definer
set search_path = ''
set timezone = 'UTC'
as $$
begin
  if tg_op = 'INSERT' then
    perform private.count_activity(day, owner_id, 0, n)
    from (select date_trunc('day', c.started_at) as day, c.owner_id, count(*) as n
          from new_turns t join public.conversations c on c.id = t.conversation_id
          group by 1, 2) g;
  else
    perform private.count_activity(day, owner_id, 0, -n)
    from (select date_trunc('day', c.started_at) as day, c.owner_id, count(*) as n
          from old_turns t join public.conversations c on c.id = t.conversation_id
          group by 1, 2) g;
  end if;
  return null;
end
$$;
create trigger turns_activity_insert after insert on public.turns
  referencing new table as new_turns
  for each statement execute function private.activity_turns();
create trigger turns_activity_delete after delete on public.turns
  referencing old table as old_turns
  for each statement execute function private.activity_turns();
-- (A turn never moves to another conversation: no API role may change conversation_id.)

create function public.activity_daily_rows()
returns table (day timestamptz, conversations bigint, turns bigint)
language plpgsql security definer
set search_path = ''
as $$
begin
  if (select public.has_role('researcher')) then
    return query
      select a.day, sum(a.conversations)::bigint, sum(a.turns)::bigint
      from private.activity_rollup a group by a.day having sum(a.conversations) > 0;
  else
    return query
      select a.day, a.conversations, a.turns
      from private.activity_rollup a
      where a.owner_id = (select auth.uid()) and a.conversations > 0;
  end if;
end
$$;
revoke all on function public.activity_daily_rows() from public, anon;
grant execute on function public.activity_daily_rows() to authenticated, service_role;

create or replace view public.analytics_activity_daily with (security_invoker = on) as
select * from public.activity_daily_rows();
comment on view public.analytics_activity_daily is 'Conversations and turns per UTC day of the conversation start (from private.activity_rollup).';

insert into private.activity_rollup (day, owner_id, conversations, turns)
select date_trunc('day', c.started_at at time zone 'UTC') at time zone 'UTC', c.owner_id,
       count(distinct c.id), count(t.id)
from public.conversations c left join public.turns t on t.conversation_id = c.id
group by 1, 2;
