-- A resumed eval run sends the rows of its last, interrupted batch again; the
-- runner upserts them, which needs an update policy beside the insert one.
-- Only the run's author, still a researcher, may rewrite its samples.
create policy "authors rewrite samples of their runs" on public.eval_samples
  for update to authenticated
  using (exists (select 1 from public.eval_runs r
                 where r.id = run_id and r.created_by = (select auth.uid()))
         and (select public.has_role('researcher')))
  with check (exists (select 1 from public.eval_runs r
                      where r.id = run_id and r.created_by = (select auth.uid())));
comment on policy "authors rewrite samples of their runs" on public.eval_samples is
  'Resumed runs re-send rows of the interrupted batch (upsert).';
