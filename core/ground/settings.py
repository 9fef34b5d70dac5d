"""One settings object, read from the environment and `.env`, passed into every process."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.ground.setting_parts import (
    AUTOGEN_DEFAULT_CLASSES,
    JWT_ALGORITHMS,
    Credential,
    check_time_budget,
)


class Settings(BaseSettings):
    """Service settings; names match the seed's environment variables."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    # The seed's variables.
    redis_url: str = "redis://localhost:6379"
    redis_db: int = Field(default=0, ge=0, le=15)
    redis_max_connections: int = Field(default=50, ge=2)
    service_port: int = Field(default=5000, ge=1, le=65535)
    log_level: str = "INFO"
    cors_origins: str = "http://localhost:4300,http://localhost:3000"
    execution_platform_url: str = ""

    # Broker: defaults to the same Redis as the state.
    celery_broker_url: str = ""
    # Broker connections per worker process: every greenlet of a gevent worker acknowledges
    # its own task, so this must cover the worker's concurrency (-c).
    broker_max_connections: int = Field(default=1000, ge=10)
    # Celery task events (what Flower shows). Off: Flower turns the workers' events on itself
    # while it runs (its enable_events command, every 5 s), so nobody pays for them unwatched
    # (about a sixth of a worker's CPU per step). On: always sent, with producers' task-sent.
    celery_task_events: bool = False

    # Agents. An empty DEFAULT_PROVIDER means `execution_platform` when EXECUTION_PLATFORM_URL is
    # set and `simulated` otherwise (filled in by the validator below).
    default_provider: str = ""
    execution_platform_api_key: str = ""
    # Any OpenAI-compatible chat-completions server (OpenAI, vLLM, Ollama, llama.cpp server).
    openai_base_url: str = "https://api.openai.com/v1"
    openai_api_key: str = ""
    # Credentials an A2A or AutoGen agent may name (`params.auth`); a discussion body never
    # gives one. JSON: name -> {"token": ..., "urls": [allowed URL prefixes]}, e.g.
    # AGENT_CREDENTIALS='{"PARTNER_A2A": {"token": "s3cret", "urls": ["https://a.example/"]}}'.
    # A credential is sent only to a URL under one of its prefixes (none listed: any URL).
    agent_credentials: dict[str, Credential] = Field(default_factory=dict)
    # URLs a discussion body may point an agent at (A2A agent URLs, AutoGen model clients'
    # base URLs): comma-separated prefixes; empty means any. Set it on a server whose network
    # reaches services that discussion creators must not reach through it.
    agent_url_prefixes: str = ""
    # AutoGen agents: the component classes (`provider` strings) a component JSON may name,
    # anywhere in it; any other class is refused before anything is imported. Comma-separated.
    autogen_allowed_classes: str = ",".join(AUTOGEN_DEFAULT_CLASSES)
    # The transcript window an agent sees: the last N messages, further cut to a token budget
    # (estimated at 4 characters a token; 0 = no budget).
    context_window_messages: int = Field(default=20, ge=1, le=500)
    context_window_tokens: int = Field(default=0, ge=0)
    # Free-form with people (or external agents) taking part: the agent turns allowed after
    # each new post before the agents wait for the next one.
    free_form_agent_turns_per_post: int = Field(default=3, ge=1, le=100)
    # Retries of a failed agent call (connection errors, 5xx, 429), with exponential backoff
    # and full jitter, never past the turn's deadline.
    agent_max_retries: int = Field(default=3, ge=0, le=20)
    agent_backoff_base_s: float = Field(default=0.5, gt=0)
    agent_backoff_max_s: float = Field(default=8.0, gt=0)
    # Registering agents on the Execution Platform at creation happens in the API request.
    agent_register_deadline_s: float = Field(default=10.0, gt=0)
    # Streamed replies: token deltas are batched into one `message_delta` event per interval.
    stream_delta_interval_s: float = Field(default=0.1, ge=0)
    # USD per million tokens, per model: {"model": {"prompt": 2.5, "completion": 10.0}}.
    # A model missing here costs 0 unless its backend reports a cost. Set MODEL_PRICES as JSON.
    model_prices: dict[str, dict[str, float]] = Field(default_factory=lambda: {
        "gpt-4o": {"prompt": 2.5, "completion": 10.0},
        "gpt-4o-mini": {"prompt": 0.15, "completion": 0.6},
    })

    # Time budget, innermost first: an agent call < a turn < a step's slice < Celery's soft limit
    # < its hard limit < the broker's visibility timeout. The validator below keeps that order.
    # Per attempt, like the read timeout below; both are cut to what is left of the turn.
    agent_connect_timeout_s: float = Field(default=3.0, gt=0)
    # Per attempt; every attempt is also cut to what is left of the turn's deadline.
    agent_read_timeout_s: float = Field(default=30.0, gt=0)
    turn_deadline_s: float = Field(default=60.0, gt=0)
    # Under the gevent pool a step waiting on a slow agent holds only a greenlet, and every
    # yield costs a trip through the broker queue (behind any backlog): 10 s keeps 500 ms
    # agents near their ideal rate while still sharing workers between discussions.
    step_slice_s: float = Field(default=10.0, gt=0)
    step_max_turns: int = Field(default=500, ge=1)
    step_soft_time_limit_s: float = 120.0
    step_time_limit_s: float = 150.0
    broker_visibility_timeout_s: float = 600.0
    # A step's lease lives this long unless renewed; the worker renews it (fenced) every
    # `lease_renew_interval_s` while the step works, agent calls included. A dead step
    # frees its discussion within one TTL; a live one keeps it however long its turns take.
    lease_ttl_s: float = Field(default=4.0, gt=0)
    lease_renew_interval_s: float = Field(default=1.0, gt=0)
    # A turn begun this many times without committing (its workers crashed or timed out each
    # time) fails the discussion with the reason recorded, instead of crashing workers forever.
    step_max_attempts: int = Field(default=5, ge=1, le=100)

    # The recovery sweep (run by the workers themselves, one of them per interval, and by beat
    # when it runs) re-enqueues discussions that should be moving and are not: a lease that
    # ended without a release (its step died) at once; otherwise pending or active, no lease,
    # not parked idle, and no progress for `reconcile_stale_s` (a lost enqueue).
    reconcile_interval_s: float = Field(default=2.0, gt=0)
    reconcile_stale_s: float = Field(default=30.0, gt=0)

    # Redis Sentinel (docs/guarantees.md): when REDIS_SENTINELS lists "host:port" pairs
    # (comma-separated), state and broker connect to the primary that the Sentinels name
    # REDIS_SENTINEL_MASTER, and follow it through a failover; REDIS_URL then only gives the
    # database's password, if any.
    redis_sentinels: str = ""
    redis_sentinel_master: str = "mymaster"
    # Each commit waits until this many replicas acknowledged it (Redis WAIT), up to the
    # timeout; a commit not acknowledged in time is reported as a Redis error (0: no wait).
    redis_wait_replicas: int = Field(default=0, ge=0, le=10)
    redis_wait_timeout_ms: int = Field(default=1000, ge=1)

    # Redis operations from the API fail fast instead of hanging.
    redis_socket_timeout_s: float = Field(default=5.0, gt=0)
    redis_connect_timeout_s: float = Field(default=1.0, gt=0)

    # Limits on input.
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    max_message_chars: int = Field(default=20_000, ge=1)
    max_participants: int = Field(default=32, ge=1)
    max_rounds_limit: int = Field(default=1000, ge=1)

    # Live stream.
    # Retention of each discussion's events stream: at most this many entries (approximate
    # trimming on every write), and, when `events_retention_s` > 0, nothing older than that
    # (trimmed by the reconciler). A resume from an id older than what is kept gets
    # `resync_required`.
    events_maxlen: int = Field(default=10_000, ge=100)
    events_retention_s: float = Field(default=0.0, ge=0)
    # A finished discussion's events are trimmed to its last `events_finished_tail` entries
    # this long after it finished (beat's tick; 0 = never): live viewers have long had them,
    # and a resume from an id before the tail gets `resync_required`.
    events_finished_trim_s: float = Field(default=300.0, ge=0)
    events_finished_tail: int = Field(default=10, ge=1)
    # A viewer that leaves a ping unanswered for one interval is closed (the idle timeout).
    ws_ping_interval_s: float = Field(default=25.0, gt=0)
    ws_max_frame_bytes: int = Field(default=64 * 1024, ge=1024)
    # Events buffered per viewer; a viewer that falls this far behind is closed with 4008.
    ws_viewer_queue: int = Field(default=2000, ge=10)
    # A send blocked this long (the viewer stopped reading) closes the viewer's socket.
    ws_send_timeout_s: float = Field(default=10.0, gt=0)

    # Security (docs/security.md). Authentication is on unless turned off for a loopback demo.
    service_host: str = Field(
        default="127.0.0.1", description="Address the API binds (loopback unless configured); "
        "checked against AUTH_ENABLED."
    )
    auth_enabled: bool = True
    # With authentication off the service serves loopback only; this forces it onto a network.
    auth_off_allow_network: bool = False
    api_key_prefix: str = Field(default="dok", pattern=r"^[a-z]{2,8}$")
    jwt_algorithms: str = Field(default="HS256", description="Accepted algorithms, comma-separated")
    jwt_secret: SecretStr = SecretStr("")
    jwt_public_key: SecretStr = SecretStr("")  # PEM text for RS*/ES*/PS* algorithms
    jwt_public_key_file: str = ""
    jwt_audience: str = "discussion-orchestrator"
    jwt_issuer: str = ""
    jwt_user_claim: str = "sub"
    jwt_leeway_s: int = Field(default=30, ge=0, le=300)

    # Reverse proxies in front of the API that set X-Forwarded-For/-Proto/-Host (0: none). The
    # per-address limit and the demo mode's loopback check then see the real client address.
    trusted_proxy_hops: int = Field(default=0, ge=0, le=5)

    # Rate limits, shared by every API process through Redis (limits' syntax, e.g. "600/minute").
    rate_limit_enabled: bool = True
    rate_limit_per_user: str = "600/minute"
    rate_limit_per_address: str = "1200/minute"
    rate_limit_create: str = "30/minute"
    rate_limit_strategy: str = Field(
        default="fixed-window", pattern="^(fixed-window|moving-window|sliding-window-counter)$"
    )

    # Quotas per user.
    max_active_discussions_per_user: int = Field(default=20, ge=1)
    max_messages_limit: int = Field(default=10_000, ge=1)
    user_daily_spend_usd: float = Field(default=10.0, ge=0)
    user_daily_tokens: int = Field(default=2_000_000, ge=0)

    # WebSocket frames from clients.
    ws_max_messages_per_s: float = Field(default=10.0, gt=0)
    ws_message_burst: int = Field(default=20, ge=1)
    ws_max_connections_per_user: int = Field(default=50, ge=1)
    # `resume` frames per socket (a token bucket), and the bytes one replay (or an `init`'s
    # history) may send; a longer backlog gets `resync_required` and a bounded `init`.
    ws_resume_per_s: float = Field(default=0.2, gt=0)
    ws_resume_burst: int = Field(default=3, ge=1)
    ws_max_replay_bytes: int = Field(default=1024 * 1024, ge=64 * 1024)
    # `/metrics` with authentication on: only `Authorization: Bearer <METRICS_TOKEN>` (empty:
    # nobody; scrape the workers' own port or set a token).
    metrics_token: SecretStr = SecretStr("")

    @model_validator(mode="after")
    def _check_jwt(self) -> Settings:
        algs = self.jwt_algorithm_list
        unknown = [a for a in algs if a not in JWT_ALGORITHMS]
        if unknown:
            raise ValueError(f"JWT_ALGORITHMS has unsupported {unknown}; use {JWT_ALGORITHMS}")
        secret = self.jwt_secret.get_secret_value()
        if secret and len(secret.encode()) < 32:
            raise ValueError("JWT_SECRET must be at least 32 bytes")
        return self

    @property
    def jwt_algorithm_list(self) -> list[str]:
        """JWT_ALGORITHMS split on commas: the only algorithms a token may use."""
        return [a.strip() for a in self.jwt_algorithms.split(",") if a.strip()]
    # Operations (docs/operations.md).
    log_format: str = Field(default="plain", pattern="^(plain|json)$")
    # A worker counts as live while its heartbeat is younger than this.
    worker_heartbeat_ttl_s: float = Field(default=15.0, gt=0)
    worker_heartbeat_interval_s: float = Field(default=5.0, gt=0)
    # Readiness: live workers needed, and the oldest queued step age that counts as stuck.
    health_min_workers: int = Field(default=1, ge=0)
    health_max_queue_age_s: float = Field(default=300.0, gt=0)
    health_probe_timeout_s: float = Field(default=2.0, gt=0)
    # A Celery worker serves its own /metrics on this port (0: off).
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)
    # The address the worker's metrics listen on: loopback unless configured.
    worker_metrics_host: str = "127.0.0.1"
    # Schedules and batches: how often beat's tick runs, how often a batch refills its slots.
    schedule_tick_s: float = Field(default=10.0, gt=0)
    schedule_missed_grace_s: float = Field(default=60.0, gt=0)
    batch_pump_interval_s: float = Field(default=2.0, gt=0)
    max_batch_items: int = Field(default=1000, ge=1)
    # Finished discussions are deleted, every key of them, this long after they end (default
    # 30 days; 0 keeps them forever).
    retention_finished_s: float = Field(default=30 * 86400.0, ge=0)
    # Storage: bytes of message records one discussion may hold (agent turns then stop with
    # `storage_limit`, posts get 413) and all the discussions a user owns (posts and creates
    # get 413 until something is deleted or expires). 0: no limit.
    max_discussion_bytes: int = Field(default=16 * 1024 * 1024, ge=0)
    user_storage_bytes: int = Field(default=256 * 1024 * 1024, ge=0)
    retention_sweep_interval_s: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _check_time_budget(self) -> Settings:
        if not self.default_provider:
            self.default_provider = (
                "execution_platform" if self.execution_platform_url else "simulated"
            )
        check_time_budget(self)
        return self

    @property
    def broker_url(self) -> str:
        """The Celery broker; the state Redis unless configured apart."""
        if self.celery_broker_url:
            return self.celery_broker_url
        if self.redis_sentinels:
            # kombu's Sentinel transport: every Sentinel, `;`-separated; the primary's name is
            # a transport option (celeryconfig.py).
            return ";".join(f"sentinel://{host}:{port}/{self.redis_db}"
                            for host, port in self.sentinel_addresses)
        base = self.redis_url.rstrip("/")
        # A URL that already names a database keeps it.
        tail = base.split("://", 1)[-1]
        return base if "/" in tail else f"{base}/{self.redis_db}"

    def agent_url_allowed(self, url: str) -> bool:
        """Whether AGENT_URL_PREFIXES lets a discussion body name `url`."""
        prefixes = [p.strip() for p in self.agent_url_prefixes.split(",") if p.strip()]
        return not prefixes or any(url.startswith(p) for p in prefixes)

    @property
    def autogen_allowed(self) -> frozenset[str]:
        """AUTOGEN_ALLOWED_CLASSES as a set."""
        return frozenset(c.strip() for c in self.autogen_allowed_classes.split(",") if c.strip())

    @property
    def cors_origin_list(self) -> list[str]:
        """CORS_ORIGINS split on commas."""
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def lease_ttl_ms(self) -> int:
        """How long a step's lease lives without renewal."""
        return int(self.lease_ttl_s * 1000)

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """REDIS_SENTINELS as (host, port) pairs; empty when Sentinel is not used."""
        pairs = []
        for item in filter(None, (i.strip() for i in self.redis_sentinels.split(","))):
            host, _, port = item.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"REDIS_SENTINELS: {item!r} is not host:port")
            pairs.append((host, int(port)))
        return pairs
