"""Cluster mode: several machines share one PostgreSQL store and its job queue.

queue: the procrastinate app, the task names and how each kind of job is deferred;
leader: `vigie daemon --cluster`, the one scheduler at a time (an advisory lock) that decides
when work is due and enqueues it; tasks: what each job does in a worker; worker: `vigie
worker`; metrics: the Prometheus counters; status: what `vigie cluster status` shows.
"""
