"""The simulated voice's words (refplatform/voice.py): subjects by topic, voices by persona, and
each voice's lines by stance. Data only."""

from __future__ import annotations

# Subjects by what the topic is about (first family whose keyword the topic contains).
SUBJECTS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("auth", "login", "password", "passkey", "sign-in", "sign in", "identity", "session"),
     ("token lifetime", "refresh token rotation", "the password reset flow",
      "session revocation", "MFA enrollment", "login throttling")),
    (("database", "postgres", "mysql", "schema", "storage", "data model"),
     ("the migration strategy", "the backup and restore drill", "read scaling",
      "connection pooling", "the indexing plan", "data retention")),
    (("api", "endpoint", "rest", "graphql", "sdk"),
     ("versioning", "the error format", "pagination", "rate limiting", "idempotent retries",
      "backwards compatibility")),
    (("retro", "review", "incident", "postmortem", "outage", "on-call", "on call"),
     ("the timeline of events", "alert coverage", "follow-up ownership", "the runbook",
      "time to detect", "the action list")),
    (("release", "launch", "rollout", "migrat", "deploy"),
     ("the rollout plan", "the feature-flag plan", "the rollback path",
      "customer communication",
      "the cut-over window", "monitoring during launch")),
)
GENERIC = ("scope", "the first milestone", "ownership", "the success metric",
            "the biggest risk", "the rollout plan")

# Who cares about what: persona keywords -> voice name (first match wins).
PERSONAS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("security", "secops", "privacy", "pentest"), "security"),
    (("product", "pm", "owner", "business"), "product"),
    (("sre", "ops", "reliability", "infra", "platform", "devops"), "sre"),
    (("design", "ux", "ui"), "design"),
    (("qa", "tester", "quality"), "qa"),
    (("backend", "developer", "engineer", "architect", "frontend", "programmer"), "engineer"),
)

# Lines per voice and stance. {prev}: the previous speaker's name; {their}: the subject they
# raised (or "this"); {subject}: what this speaker brings up; {topic}: the topic as a phrase.
LINES: dict[str, dict[str, tuple[str, ...]]] = {
    "security": {
        "open": ("Before we commit to anything on {topic}, let's agree on a threat model. My "
                 "first worry is {subject}: get that wrong and the rest leaks.",
                 "I'll start with the uncomfortable part of {topic}: {subject}. Whatever we "
                 "build, an attacker will probe that first."),
        "agree": ("I'm with {prev} on {their}, provided every change to it is logged and we "
                  "alert on anything unusual.",
                  "Good call from {prev} on {their}. Let's have it reviewed by someone outside "
                  "the team, and do the same for {subject}.",
                  "{prev} is right about {their}. From a security angle I'd add {subject}, "
                  "with short lifetimes by default."),
        "challenge": ("{prev}, I'd push back on {their}: as proposed it widens the attack "
                      "surface. Can we look at {subject} first?",
                      "With respect, {prev}, {their} trusts the client more than I would. "
                      "Server-side checks on {subject} would close that gap.",
                      "I'm not comfortable with {their} yet, {prev}. One leaked credential "
                      "and it becomes the weakest link; {subject} needs a decision before it."),
        "extend": ("Building on what {prev} said about {their}: {subject} deserves the same "
                   "care, least privilege and an audit trail.",
                   "To {prev}'s point on {their}, I'd pair it with {subject}, so a single "
                   "mistake can't compromise everything."),
        "question": ("{prev}, how does {their} hold up against a stolen token? That answer "
                     "decides it for me.",
                     "{prev}, what does an attacker see if {their} fails open? I'd like that "
                     "written down before we pick {subject}.",
                     "A question for {prev}: who can change {their}, and how would we notice "
                     "if someone abused it?"),
    },
    "engineer": {
        "open": ("From the implementation side of {topic}, I'd start small: get {subject} "
                 "right, ship it behind a flag, then iterate.",
                 "Let me sketch the build for {topic}. The part I'd nail down first is "
                 "{subject}; everything else hangs off it."),
        "agree": ("Agreed with {prev} on {their}. It's also the simplest thing to build, and "
                  "we can test it end to end in a day.",
                  "That works, {prev}: {their} maps onto what we already run. I can have a "
                  "draft of {subject} up for review this week.",
                  "{prev}'s take on {their} works for me. I'd keep the code path boring and "
                  "put {subject} next on the list."),
        "challenge": ("I see it differently from {prev}: {their} sounds clean on paper but "
                      "adds moving parts we'd have to run forever. {subject} is cheaper to "
                      "get right.",
                      "{prev}, {their} as described would double our maintenance. Could we "
                      "solve it with {subject} instead?",
                      "I'm wary of {their}, {prev}: we'd be writing our own version of "
                      "something the framework gives us. {subject} is where our effort pays."),
        "extend": ("Following on from {prev} about {their}: in code I'd give {subject} one "
                   "module and one owner.",
                   "To make {prev}'s point on {their} concrete, I'd write {subject} as a "
                   "small library with its own tests."),
        "question": ("{prev}, what latency budget do you have in mind for {their}? It changes "
                     "how I'd build it.",
                     "{prev}, who owns {their} once it ships? If it's us, I'd keep {subject} "
                     "out of the first version.",
                     "Quick check with {prev}: should {their} work when a dependency is "
                     "down, or can we assume it is always reachable?"),
    },
    "product": {
        "open": ("Let's frame {topic} around the user. What people notice first is "
                 "{subject}, so that's where I'd measure success.",
                 "For {topic}, I'd like us to agree on the outcome before the design: a "
                 "smooth experience with {subject} is what customers ask about most."),
        "agree": ("{prev} makes a good case for {their}, and it fits the roadmap. Let's "
                  "write it down as a requirement.",
                  "Sold on {their}, {prev}. Support will thank us; I'll put {subject} on the "
                  "list for the next planning session.",
                  "I'm happy with {prev}'s view on {their}. Users won't see it directly, but "
                  "they'll feel {subject} if we skip it."),
        "challenge": ("I hear {prev} on {their}, but I worry it costs us the launch date. "
                      "Can {subject} come first and the rest follow?",
                      "{prev}, our users have never asked about {their}. They do complain "
                      "about {subject}; can we weigh that first?",
                      "{their} is sound, {prev}, but it's invisible to customers. What they "
                      "will notice is {subject}."),
        "extend": ("Adding to what {prev} said on {their}: let's track adoption and support "
                   "tickets for {subject} from day one.",
                   "{prev}'s point about {their} suggests a milestone: {subject} in the first "
                   "release, polish in the second."),
        "question": ("{prev}, what would {their} mean for a first-time user? I want to be "
                     "sure the flow stays short.",
                     "{prev}, can we measure whether {their} works for users? Without a "
                     "number I can't prioritise it against {subject}.",
                     "If we go with {prev}'s approach to {their}, what do we tell customers "
                     "who already rely on the old behaviour?"),
    },
    "sre": {
        "open": ("Operationally, {topic} lives or dies on {subject}. I'd want dashboards and "
                 "an alert for it before anything ships.",
                 "Let me bring the on-call view to {topic}: {subject} is what will page "
                 "someone at 3 a.m., so let's design for it."),
        "agree": ("I'm with {prev} on {their}; it's easy to monitor and to roll back.",
                  "{prev}'s plan for {their} is operable. I'd add an SLO for {subject}."),
        "challenge": ("{prev}, {their} adds a dependency we'd have to keep alive. What "
                      "happens when it's down? I'd rather fix {subject} first.",
                      "I'd be careful with {their}, {prev}: every extra service is another "
                      "pager rotation. {subject} gives us more for less."),
        "extend": ("Following {prev} on {their}: let's load-test it and write the runbook for "
                   "{subject} at the same time.",
                   "To {prev}'s point about {their}, I'd add a canary stage and watch "
                   "{subject} during the rollout."),
        "question": ("{prev}, how do we roll back {their} if it misbehaves in production?",
                     "What's the failure mode of {their}, {prev}? I'd like to know what we "
                     "see on the dashboards when it breaks."),
    },
    "design": {
        "open": ("For {topic}, I'd start from the screens people actually see; {subject} is "
                 "where they get stuck today.",),
        "agree": ("{prev}'s idea on {their} keeps the flow simple; I like it.",),
        "challenge": ("{prev}, {their} would add a step for every user. Could {subject} "
                      "carry that instead?",),
        "extend": ("Picking up {prev}'s point on {their}: let's prototype it alongside "
                   "{subject} and test with five users.",),
        "question": ("{prev}, what does a user see when {their} fails?",),
    },
    "qa": {
        "open": ("On {topic}, I'd list how it can break before we build it; {subject} is my "
                 "first test case.",),
        "agree": ("Agreed with {prev} on {their}: it's testable, and I can automate it.",),
        "challenge": ("{prev}, {their} has a lot of edge cases. I'd rather pin down "
                      "{subject} first.",),
        "extend": ("Adding to {prev} on {their}: we need tests for {subject} in the same "
                   "change.",),
        "question": ("{prev}, how would we reproduce a bug in {their}?",),
    },
    "generic": {
        "open": ("To open on {topic}: I'd start with {subject}, since the other decisions "
                 "depend on it.",
                 "My first thought on {topic} is {subject}. Let's get that clear before the "
                 "details."),
        "agree": ("I agree with {prev} about {their}. Next I'd look at {subject}.",
                  "{prev} has a point on {their}; it fits with {subject}."),
        "challenge": ("I see {their} differently from {prev}: I'd put {subject} first.",
                      "{prev}, I'm not convinced on {their} yet. What about {subject}?"),
        "extend": ("Building on {prev}'s point about {their}, {subject} follows naturally.",
                   "To add to what {prev} said on {their}: {subject} matters here too."),
        "question": ("{prev}, what would {their} look like in practice?",
                     "Could you say more about {their}, {prev}? It affects {subject}."),
    },
}
