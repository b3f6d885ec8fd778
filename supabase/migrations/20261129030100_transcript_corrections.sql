-- Corrected transcripts become references, with who corrected them and when.
--
-- A turn's `reference_text` is a human correction of what the agent heard; the
-- ASR eval scores corrected turns against it (workbench_datasets.conversations).
-- Who and when are stamped by the database from the session (never sent by the
-- page), an empty correction clears it, and researchers may correct any turn they
-- can read, as owners may theirs.

alter table public.turns
  add column reference_by uuid references auth.users (id) on delete set null,
  add column reference_at timestamptz;
comment on column public.turns.reference_by is 'Who stored reference_text (stamped from the session).';
comment on column public.turns.reference_at is 'When reference_text was stored (stamped by the database).';

create function private.stamp_reference() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  new.reference_text := nullif(btrim(new.reference_text), '');
  if new.reference_text is null then
    new.reference_by := null;
    new.reference_at := null;
  elsif new.reference_text is distinct from old.reference_text then
    new.reference_by := auth.uid();
    new.reference_at := now();
  end if;
  return new;
end
$$;
create trigger turns_stamp_reference before update of reference_text on public.turns
  for each row execute function private.stamp_reference();

drop policy "owners correct their transcripts" on public.turns;
create policy "owners and researchers correct transcripts" on public.turns
  for update to authenticated
  using (public.owns_conversation(conversation_id) or (select public.has_role('researcher')))
  with check (public.owns_conversation(conversation_id) or (select public.has_role('researcher')));
