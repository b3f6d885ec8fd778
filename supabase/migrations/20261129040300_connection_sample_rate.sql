-- A page samples its connection every 2 s; the database keeps at most one sample per
-- conversation per second and 7200 per conversation (4 hours), so a client cannot
-- flood the table. Extra samples are dropped quietly: they are measurements, and the
-- ones kept already describe the connection. A client's sample is timed by the
-- server's clock, never its own (the service and migrations may backfill times).

create function private.thin_connection_samples() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if current_setting('role') in ('anon', 'authenticated') then
    new.sampled_at := clock_timestamp();
  end if;
  if exists (select 1 from public.connection_samples s
             where s.conversation_id = new.conversation_id
               and s.sampled_at > new.sampled_at - interval '1 second')
     or (select count(*) from public.connection_samples s
         where s.conversation_id = new.conversation_id) >= 7200 then
    return null;
  end if;
  return new;
end
$$;
create trigger connection_samples_thin before insert on public.connection_samples
  for each row execute function private.thin_connection_samples();
