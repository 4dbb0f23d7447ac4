"""The run folder and the processes that write it: file names, reads, atomic writes, jobs, resume state, zips."""
