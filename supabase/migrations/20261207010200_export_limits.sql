-- An export is built in the web server's memory: a user may ask for a few an hour,
-- each of at most so many turns, not for one after another without end.

create function public.export_limits(out per_hour integer, out max_turns integer)
language sql immutable
set search_path = ''
as $$
  select 10, 200000
$$;
comment on function public.export_limits() is
  'Exports a user may request per hour, and the most turns one export holds (workbench.exports).';
grant execute on function public.export_limits() to authenticated, service_role;

create function private.check_export_rate() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  allowed integer := (select per_hour from public.export_limits());
begin
  -- One request at a time per owner, so two clicks cannot both pass the count.
  perform pg_advisory_xact_lock(hashtext('public.exports:' || new.owner_id::text));
  if (select count(*) from public.exports e
      where e.owner_id = new.owner_id and e.created_at > now() - interval '1 hour') >= allowed then
    raise exception 'at most % exports an hour: try again later', allowed
      using errcode = '54000';
  end if;
  return new;
end
$$;
create trigger exports_rate before insert on public.exports
  for each row execute function private.check_export_rate();
