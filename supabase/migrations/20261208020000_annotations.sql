-- Annotations: researchers tag, rate and note conversations and their turns.
--
-- A shared vocabulary of tags (admins manage it, researchers use it); an annotation
-- is one researcher's word on one conversation (turn_id null) or one of its turns: a
-- 1-5 rating, a note and tags. Each researcher keeps one annotation per target and
-- edits it; who and when are stamped by the database. Researchers read every
-- annotation (a group's shared judgement), write only their own; admins may remove
-- any. Plain users neither see nor write them: a participant's conversation is
-- theirs, the judgement of it the study's.

create table public.annotation_tags (
  id bigint generated always as identity primary key,
  name text not null unique check (name ~ '^[a-z0-9][a-z0-9 _-]{0,39}$'),
  description text not null default '' check (char_length(description) <= 500),
  created_by uuid references auth.users (id) on delete set null default auth.uid(),
  created_at timestamptz not null default now()
);
comment on table public.annotation_tags is 'The tags researchers annotate with; admins manage the vocabulary.';

create table public.annotations (
  id bigint generated always as identity primary key,
  conversation_id uuid not null references public.conversations (id) on delete cascade,
  turn_id bigint references public.turns (id) on delete cascade,  -- null: the whole conversation
  author_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  rating smallint check (rating between 1 and 5),
  note text not null default '' check (char_length(note) <= 2000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique nulls not distinct (author_id, conversation_id, turn_id)
);
comment on table public.annotations is 'One researcher''s rating, note and tags on a conversation (turn_id null) or one of its turns.';
create index annotations_conversation on public.annotations (conversation_id);

create table public.annotation_labels (
  annotation_id bigint not null references public.annotations (id) on delete cascade,
  tag_id bigint not null references public.annotation_tags (id) on delete restrict,
  primary key (annotation_id, tag_id)
);
comment on table public.annotation_labels is 'The tags of an annotation (a tag in use cannot be deleted).';
create index annotation_labels_tag on public.annotation_labels (tag_id);

-- The turn must be the conversation's, and who and when are the session's, not the client's.
create function private.stamp_annotation() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.turn_id is not null and not exists (
    select 1 from public.turns t where t.id = new.turn_id and t.conversation_id = new.conversation_id
  ) then
    raise exception 'turn % is not a turn of conversation %', new.turn_id, new.conversation_id
      using errcode = '23514';
  end if;
  if tg_op = 'INSERT' then
    new.author_id := coalesce(auth.uid(), new.author_id);
    new.created_at := now();
  else
    new.author_id := old.author_id;
    new.conversation_id := old.conversation_id;
    new.turn_id := old.turn_id;
    new.created_at := old.created_at;
  end if;
  new.updated_at := now();
  return new;
end
$$;
create trigger annotations_stamp before insert or update on public.annotations
  for each row execute function private.stamp_annotation();
revoke all on function private.stamp_annotation() from public;

alter table public.annotation_tags enable row level security;
alter table public.annotations enable row level security;
alter table public.annotation_labels enable row level security;
revoke all on public.annotation_tags, public.annotations, public.annotation_labels from anon, authenticated;
grant select, insert, delete on public.annotation_tags to authenticated;
grant update (description) on public.annotation_tags to authenticated;
grant select, insert, delete on public.annotations to authenticated;
grant update (rating, note) on public.annotations to authenticated;
grant select, insert, delete on public.annotation_labels to authenticated;

create policy "researchers read tags" on public.annotation_tags
  for select to authenticated using ((select public.has_role('researcher')));
create policy "admins manage tags" on public.annotation_tags
  for all to authenticated
  using ((select public.has_role('admin'))) with check ((select public.has_role('admin')));

create policy "researchers read annotations" on public.annotations
  for select to authenticated using ((select public.has_role('researcher')));
create policy "researchers annotate in their own name" on public.annotations
  for insert to authenticated
  with check ((select public.has_role('researcher')) and author_id = (select auth.uid()));
create policy "authors edit their annotations" on public.annotations
  for update to authenticated
  using (author_id = (select auth.uid()) and (select public.has_role('researcher')))
  with check (author_id = (select auth.uid()));
create policy "authors and admins remove annotations" on public.annotations
  for delete to authenticated
  using (author_id = (select auth.uid()) or (select public.has_role('admin')));

create policy "researchers read labels" on public.annotation_labels
  for select to authenticated using ((select public.has_role('researcher')));
create policy "authors label their annotations" on public.annotation_labels
  for insert to authenticated
  with check (exists (
    select 1 from public.annotations a
    where a.id = annotation_id and a.author_id = (select auth.uid())
  ) and (select public.has_role('researcher')));
create policy "authors unlabel their annotations" on public.annotation_labels
  for delete to authenticated
  using (exists (
    select 1 from public.annotations a
    where a.id = annotation_id and a.author_id = (select auth.uid())
  ));
