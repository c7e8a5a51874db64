"""The write stage: where a run's files go, and how an interrupted run is continued.

Stages, in the order a run uses them:
- `run`: the checks on --out, the run key a --resume must match, the writer and journal of a run;
- `scratch`: scratch packs, where encoded images wait on the workers until the draw decides;
- `local`: a local --out, staged beside it and published by rename (atomic);
- `remote`: an fsspec URL --out (s3://, gs://, ...), written in place, negmine.json last.
"""

from negmine.outputs.writers.local import RUN_RECORD, STATE, DatasetWriter, Journal, checked_rel
from negmine.outputs.writers.remote import RemoteWriter, SegmentJournal, filesystem, is_url, refuse_whole_bucket
from negmine.outputs.writers.run import (VOLATILE, Run, check_url, check_workers, open_writer, out_location, plain_record, refuse_local_only,
                                 refuse_out_inside, run_options, stored_seed)
from negmine.outputs.writers.scratch import (OutTakenOver, RemotePack, RemoteScratch, ScratchPack, close_pack, copy_out,
                                     copy_out_fs, open_packs, pipe_file, scratch_pack)

__all__ = ["RUN_RECORD", "STATE", "VOLATILE", "DatasetWriter", "Journal", "OutTakenOver", "RemotePack", "RemoteScratch",
           "RemoteWriter", "Run", "check_url", "check_workers", "ScratchPack", "SegmentJournal", "checked_rel", "close_pack", "copy_out",
           "copy_out_fs", "filesystem", "open_packs", "is_url", "open_writer", "out_location", "pipe_file", "plain_record",
           "refuse_local_only", "refuse_out_inside", "refuse_whole_bucket", "run_options", "scratch_pack", "stored_seed"]
