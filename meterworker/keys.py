"""Every name meterworker uses in Redis and Celery: its keys, task names and queue names.

Keys are built here and nowhere else. They must stay byte-identical from release to release: a
Redis written by one release is read by the next. `{c}` is the collector name
(`meterworker.name`), `{q}` a query name, `{tick}` a tick in Unix seconds.

Tick state (meterworker.schedule.state)

  meterworker:{c}:cursor:{q}              string  the newest tick beat dispatched (or found claimed).
                                                  Beat writes it (only ever forward). Kept forever.
  meterworker:{c}:claim:{q}:{tick}        string  "1": the tick was dispatched once. Beat writes it (SET NX);
                                                  query workers read it (a claimed tick no longer pending is
                                                  done: a copy of its task does nothing). TTL catchup_horizon
                                                  + 1 day.
  meterworker:{c}:pending:{q}             zset    tick -> time of its last sign of life (dispatch, the lease of
                                                  a task running it, or the time its retry is due). Beat and
                                                  backfill add ticks; query workers refresh them while running
                                                  them and on a failed attempt, and remove them when completed.
                                                  A member lives until its tick completes; beat dispatches it
                                                  again after stall_timeout without a sign of life.
  meterworker:{c}:running:{q}:{tick}      string  the Celery task id of the query task running the tick: its
                                                  lease. Query workers write it when they start the tick and
                                                  renew it (and the tick's sign of life) every stall_timeout / 4
                                                  while they run it; deleted when the task completes the tick or
                                                  waits for its retry. TTL stall_timeout (a dead worker's runs out).
  meterworker:{c}:failure:{q}             string  JSON {tick, error, attempt, at} of the last failed attempt.
                                                  Query workers write it; deleted when a tick of q completes.
  meterworker:{c}:completed:{q}           string  the newest tick completed. Query workers write it (only ever
                                                  forward). Kept forever.
  meterworker:{c}:counter-gap:{q}         string  JSON {tick, series, max_gap, examples, at}: the newest tick of counter
                                                  query q in which series came back after a gap longer than
                                                  max_gap (their growth during the gap is not billed). Query
                                                  workers write it; TTL 7 days; `status` shows it.
  meterworker:{c}:backfill:{run}          hash    "{q}:{tick}" -> "" for each tick of a `backfill` run done so far,
                                                  or JSON {error, attempts} for a tick given up. Query workers
                                                  write it; TTL 7 days from the last write, deleted by the
                                                  backfill command when the run is done. {run} is named after
                                                  the backfill's queries and range, so that running the same
                                                  command again after an interruption continues it.
  meterworker:{c}:backfill:{run}:stop     string  the token of a `backfill` invocation stopped by Ctrl-C: its tasks
                                                  not yet done do nothing. The backfill command writes it; TTL
                                                  7 days.
  meterworker:{c}:sent                    hash    {q} -> events of q delivered so far (a progress figure, not a
                                                  guarantee: written after the delivery is recorded). Send
                                                  workers write it; `backfill` reads it. Kept forever.

The beat lock (meterworker.schedule.beat_lock)

  meterworker:{c}:beat-lock               string  the id ("host:pid:random") of the active beat. Beat writes it
                                                  (redis-py Lock). TTL lock_timeout, renewed by the holder
                                                  every lock_timeout / 3; deleted when that beat stops.

The outbox (meterworker.delivery.outbox): a batch is one value, its events' state is per tick

  meterworker:{c}:outbox:batch-data       hash    the batches of the outbox, by batch id {id}:
                                                  "{id}" -> its events' JSON joined by ","; "{id}:d" ->
                                                  their 8-byte digests (dedup.digest) in the same order;
                                                  "{id}:g" -> a line "<count>:[query, tick]" per run of
                                                  events of one tick; "{id}:c" -> events in it; "{id}:n" -> events
                                                  not settled (delivered or dead-lettered) yet; "{id}:s" ->
                                                  8-byte digests (dedup.digest) of the settled ones; "{id}:gen",
                                                  "{id}:attempt", "{id}:ff" (first failure) once taken. Query
                                                  workers (and `dlq replay`) write a batch; send workers take
                                                  and settle it; its fields are deleted when nothing of it is
                                                  left to settle.
  meterworker:{c}:outbox:ready            zset    batch id -> time its first event was added, of batches not
                                                  taken yet. Query workers add; send workers take.
  meterworker:{c}:outbox:open             string  the id of the newest ready batch while it holds fewer than
                                                  batching.count events: the next events added fill it first.
                                                  Query workers write it; deleted when it is full or taken.
  meterworker:{c}:outbox:tick:{q}:{tick}  hash    what of q's tick {tick} ("-" for events of no tick) is pending:
                                                  "n" -> events pending; "h:1".."h:{h#}" -> digests of the events
                                                  added, one field per add; "x:1".."x:{x#}" -> digests of those
                                                  dead-lettered since; "id" -> when it was made (a number from
                                                  outbox:stats). Query workers append "h:", send workers "x:"
                                                  and count "n" down; deleted when "n" reaches 0.
  meterworker:{c}:outbox:stats            hash    "pending", "queued": events pending and waiting in a ready batch;
                                                  "logs": the last tick hash id. Written with the keys above.
  meterworker:{c}:outbox:batches          zset    batch id -> lease deadline (or retry time) of each batch taken
                                                  (of either layout). Send workers write it; a member lives until
                                                  its batch is done.
  meterworker:{c}:outbox:flush-requested  string  "1": one send worker asked for a flush. Sweepers write it
                                                  (SET NX). TTL batching.period.

  The outbox of the release before, one entry per event: no longer written; send workers deliver what it
  holds (meterworker.delivery.legacy_outbox) and query workers do not queue again what it holds.

  meterworker:{c}:outbox:pending          hash    event key -> JSON {event, query, tick} of each pending event.
                                                  Send workers remove an event when it is delivered or
                                                  dead-lettered.
  meterworker:{c}:outbox:queue            zset    event key -> time added, of pending events in no batch.
                                                  Send workers move them into a batch.
  meterworker:{c}:outbox:batch:{id}       hash    gen, attempt, first_failure of a batch. Send workers write it;
                                                  deleted when nothing of the batch is pending.
  meterworker:{c}:outbox:batch:{id}:members
                                          set     event keys of the batch. Same writers and lifetime.

Delivery (meterworker.delivery.dedup, inflight, deadletter)

  meterworker:{c}:marks:{q}:{day}         hash    the delivered marks of q's ticks of day {day} (tick // 86400, "-"
                                                  for events of no tick). A mark is 8 bytes, the blake2b digest
                                                  of an event's source NUL id. "g{tick // 32}" -> records (4 bytes
                                                  tick, 2 bytes n, n marks) of 32 ticks, up to 4096 bytes; what
                                                  does not fit there: "{tick}" -> marks, up to 4096 bytes, then
                                                  "{tick}#" -> m and "{tick}:1".."{tick}:m" -> more marks.
                                                  Values are binary. Send workers (and commands delivering
                                                  themselves) write it; TTL dedup_horizon from its last write.
  meterworker:{c}:delivered:{source}:{id} string  "1": the event was accepted by the sink, written by releases
                                                  before the marks hash. No longer written; honoured until it
                                                  expires (TTL dedup_horizon).
  meterworker:{c}:in-flight               zset    holder id -> expiry of each request slot (max_in_flight).
                                                  Send workers write it; a slot is removed after its request,
                                                  or expires after the batch lease.
  meterworker:{c}:dlq                     hash    entry id -> JSON entry (events, reason, status, body, ...).
                                                  Send workers write it; kept until `dlq replay` or `dlq purge`.
  meterworker:{c}:dlq:index               zset    entry id -> time of the last failure. Same writers and lifetime.

Replication (meterworker.connect.replication, with meterworker.redis_min_replicas > 0)

  meterworker:{c}:replication-probe       string  "1": written before each WAIT, so that the WAIT covers every
                                                  write made before it on any connection. Query and send
                                                  workers write it. TTL 60 s.
  meterworker:{c}:replication-shortfall   string  JSON {error, at, where} of the last write the replicas did not
                                                  confirm in time. Query and send workers write it; `status`
                                                  shows it. TTL 1 day.

Celery's own (written by kombu, the broker transport, not by meterworker's code)

  query, send                             list    task messages waiting, one list per queue (QUEUES). Beat and
                                                  backfill push to `query`, query workers to `send`; workers pop.
  unacked, unacked_index, unacked_mutex   hash, zset, string
                                                  messages taken by a worker and not yet acknowledged; given to
                                                  another worker after broker_transport_options.visibility_timeout.
  _kombu.binding.*                        set     exchange bindings of the queues. Kept forever.
  {uuid}.reply.celery.pidbox              list    replies to a remote control command (`backfill`'s ping of
                                                  the workers). Expire after a few seconds.
"""

QUERY_TASK = "meterworker.query"
QUERY_TICKS_TASK = "meterworker.query_ticks"
SEND_TASK = "meterworker.send"

QUERY_QUEUE = "query"
SEND_QUEUE = "send"
QUEUES = (QUERY_QUEUE, SEND_QUEUE)


class Keys:
    """The keys of one collector."""

    def __init__(self, collector: str):
        self.prefix = p = f"meterworker:{collector}"
        self.beat_lock = f"{p}:beat-lock"
        self.outbox_pending = f"{p}:outbox:pending"
        self.outbox_queue = f"{p}:outbox:queue"
        self.outbox_batches = f"{p}:outbox:batches"
        self.outbox_batch_data = f"{p}:outbox:batch-data"
        self.outbox_ready = f"{p}:outbox:ready"
        self.outbox_open = f"{p}:outbox:open"
        self.outbox_stats = f"{p}:outbox:stats"
        self.outbox_flush_requested = f"{p}:outbox:flush-requested"
        self.in_flight = f"{p}:in-flight"
        self.dlq = f"{p}:dlq"
        self.dlq_index = f"{p}:dlq:index"
        self.replication_probe = f"{p}:replication-probe"
        self.replication_shortfall = f"{p}:replication-shortfall"

    def cursor(self, query: str) -> str:
        return f"{self.prefix}:cursor:{query}"

    def claim(self, query: str, tick: int) -> str:
        return f"{self.prefix}:claim:{query}:{tick}"

    def pending(self, query: str) -> str:
        return f"{self.prefix}:pending:{query}"

    def running(self, query: str, tick: int | str) -> str:
        return f"{self.prefix}:running:{query}:{tick}"

    def failure(self, query: str) -> str:
        return f"{self.prefix}:failure:{query}"

    def completed(self, query: str) -> str:
        return f"{self.prefix}:completed:{query}"

    def counter_gap(self, query: str) -> str:
        return f"{self.prefix}:counter-gap:{query}"

    def backfill_report(self, run_id: str) -> str:
        return f"{self.prefix}:backfill:{run_id}"

    @staticmethod
    def backfill_stop(report: str) -> str:
        """The stop key of the backfill whose report key is `report`."""
        return f"{report}:stop"

    @property
    def sent(self) -> str:
        return f"{self.prefix}:sent"

    def outbox_batch(self, batch_id: str) -> str:
        return f"{self.prefix}:outbox:batch:{batch_id}"

    def outbox_batch_members(self, batch_id: str) -> str:
        return f"{self.prefix}:outbox:batch:{batch_id}:members"

    def outbox_tick(self, query: str, tick: str) -> str:
        return f"{self.prefix}:outbox:tick:{query}:{tick}"

    def marks(self, query: str, day: str) -> str:
        return f"{self.prefix}:marks:{query}:{day}"

    def delivered(self, source: str, event_id: str) -> str:
        return f"{self.prefix}:delivered:{source}:{event_id}"
