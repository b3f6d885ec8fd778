"""Simulation suites as YAML files: scenarios of a caller persona, what it says, and what must hold.

A suite names its scenarios; each scenario names a caller persona (the voice it
speaks with and the impairments of its line), either scripted caller turns or a
goal for a caller LLM, and its success criteria: deterministic checks and
rubric items for an LLM judge. Example (`suites/smoke.yaml` ships with more):

    name: smoke
    scenarios:
      - id: capital
        required: true
        caller: {voice_spec: configs/models/piper-joe-medium.yaml, noise: {kind: pink, snr_db: 15}}
        turns:
          - say: What is the capital of France?
            expect: {mentions: [Paris]}
        expect: {no_repeated_reply: true, answers_within_s: 3}

`load_suite` refuses a suite before any room opens: a field it does not know, a
value out of range, a TTS spec it cannot read, a voice that spec does not speak,
or a threshold no call could meet; each error names the file, the line, the
scenario and the field.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from workbench.config import REPO_ROOT
from workbench.models.base import tts_voices
from workbench.models.spec import ModelSpec, SpecError, load_spec

# Where a turn's text pauses mid-sentence: "I need a table | for four, tonight."
PAUSE_MARK = "|"


class SuiteError(ValueError):
    """A suite file that cannot run: every problem, each with its file, line and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Noise(_Strict):
    """Background noise in the caller's room, mixed at a signal-to-noise ratio."""

    kind: Literal["white", "pink", "brown"]
    snr_db: float = Field(ge=-5, le=60)


class BargeIn(_Strict):
    """The caller speaks its next turn this long after the agent's reply to turn `after_turn` began."""

    after_turn: int = Field(ge=1, description="1-based caller turn whose reply is interrupted")
    after_s: float = Field(0.8, ge=0.0, le=10.0)


class Persona(_Strict):
    """Who calls and how they sound: voice, manner and the line they call on."""

    goal: str = ""
    style: str = ""
    voice_spec: Path = Path("configs/models/piper-joe-medium.yaml")
    voice: str | None = None  # one of the spec's voices; None: its default
    rate: float = Field(1.0, ge=0.5, le=2.0, description="speaking rate, 1 = the voice's own")
    # Speech level (RMS over the words); louder than -18 dBFS, speech peaks would clip.
    loudness_dbfs: float = Field(-23.0, ge=-50.0, le=-18.0)
    noise: Noise | None = None
    telephone: bool = False  # 300-3400 Hz, as a phone line carries it
    pause_s: float = Field(1.2, ge=0.1, le=5.0, description="length of each mid-sentence pause")
    barge_in: BargeIn | None = None
    answer_delay_s: float = Field(0.6, ge=0.0, le=10.0, description="silence before answering")


class TurnExpect(_Strict):
    """What the reply to one caller turn must hold."""

    mentions: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    mentions_any: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    not_mentions: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)


class ScriptedTurn(_Strict):
    """One thing the caller says (`|` marks a pause inside the turn) and what the reply must hold."""

    say: str = Field(min_length=1, max_length=600)
    expect: TurnExpect = TurnExpect()


class Expect(_Strict):
    """What the whole call must hold (each check off unless set)."""

    no_repeated_reply: bool = True
    near_duplicate_similarity: float = Field(
        0.92, gt=0.5, le=1.0, description="replies this similar (cosine) count as repeats"
    )
    answers_within_s: float | None = Field(None, gt=0.0, le=60.0)
    no_talk_over_pauses: bool = True
    no_echo: bool = True  # a reply that only says the caller's words back fails
    ends_within_turns: int | None = Field(None, ge=1, le=100)
    not_mentions: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    min_relevance: float | None = Field(None, ge=-1.0, le=1.0)
    rubric: list[Annotated[str, Field(min_length=3, max_length=300)]] = Field(default_factory=list)


class CallerLLM(_Strict):
    """A caller played by a chat model toward the persona's goal."""

    spec: Path
    max_turns: int = Field(6, ge=1, le=30)
    opening: str = Field(min_length=1, max_length=600)  # its first line (spoken as is)


class Scenario(_Strict):
    """One simulated call."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    description: str = ""
    required: bool = False  # a failed required scenario fails the run
    caller: Persona = Persona()
    turns: list[ScriptedTurn] = Field(default_factory=list, max_length=30)
    caller_llm: CallerLLM | None = None
    expect: Expect = Expect()

    @model_validator(mode="after")
    def _one_way_to_speak(self) -> Scenario:
        if bool(self.turns) == (self.caller_llm is not None):
            raise ValueError("give either `turns` (scripted) or `caller_llm` (a goal), not both")
        return self

    @property
    def max_turns(self) -> int:
        """The most caller turns the call can have."""
        return self.caller_llm.max_turns if self.caller_llm else len(self.turns)


class Suite(_Strict):
    """A named set of scenarios and the models that listen and judge."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    description: str = ""
    listen_spec: Path = Path("configs/models/whisper-tiny-en-ct2.yaml")  # transcribes the agent
    embed_spec: Path = Path("configs/models/minilm-l6-v2.yaml")  # repeats and relevance
    judge_spec: Path | None = None  # scores rubric items; none: rubric items are not scored
    min_pass_rate: float | None = Field(None, ge=0.0, le=1.0)  # below it the run fails
    scenarios: list[Scenario] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Suite:
        ids = [s.id for s in self.scenarios]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"scenario ids must be unique; repeated: {', '.join(repeated)}")
        return self

    def digest(self) -> str:
        """A short hash of the suite's content (runs of different suites are not resumed as one)."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:12]


def load_suite(path: str | Path) -> Suite:
    """Read and check a suite; SuiteError names every problem with its line and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError) as exc:
        raise SuiteError(f"{path}: cannot read the suite ({exc})") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path}: not valid YAML ({exc})") from None
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        raise SuiteError(
            "\n".join(_where(path, root, data, e["loc"]) + f": {e['msg']}" for e in exc.errors())
        ) from None
    problems = [_where(path, root, data, loc) + f": {msg}" for loc, msg in _runtime_problems(suite)]
    if problems:
        raise SuiteError("\n".join(problems))
    return suite


def resolve(path: Path) -> Path:
    """A path a suite names: absolute, or relative to the repository root."""
    return path if path.is_absolute() else REPO_ROOT / path


def _runtime_problems(suite: Suite) -> list[tuple[tuple[Any, ...], str]]:
    """What the schema cannot see: unreadable specs, unknown voices, thresholds no call meets."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    specs: dict[Path, ModelSpec | str] = {}

    def spec(path: Path, kind: str, loc: tuple[Any, ...]) -> ModelSpec | None:
        if path not in specs:
            try:
                specs[path] = load_spec(resolve(path))
            except SpecError as exc:
                specs[path] = str(exc)
        found = specs[path]
        if isinstance(found, str):
            problems.append((loc, f"unreadable {kind} spec: {found}"))
            return None
        if found.kind != kind:
            problems.append((loc, f"{path} is a {found.kind} spec, not {kind}"))
            return None
        return found

    spec(suite.listen_spec, "stt", ("listen_spec",))
    spec(suite.embed_spec, "embed", ("embed_spec",))
    if suite.judge_spec is not None:
        spec(suite.judge_spec, "llm", ("judge_spec",))
    for i, scenario in enumerate(suite.scenarios):
        at = ("scenarios", i)
        tts = spec(scenario.caller.voice_spec, "tts", (*at, "caller", "voice_spec"))
        voice = scenario.caller.voice
        if tts is not None and voice is not None and voice not in tts_voices(tts):
            problems.append(
                (
                    (*at, "caller", "voice"),
                    f"{tts.name} does not speak {voice!r}; it speaks {', '.join(tts_voices(tts))}",
                )
            )
        if scenario.caller_llm is not None:
            spec(scenario.caller_llm.spec, "llm", (*at, "caller_llm", "spec"))
        limit = scenario.expect.ends_within_turns
        if limit is not None and scenario.turns and limit < len(scenario.turns):
            problems.append(
                (
                    (*at, "expect", "ends_within_turns"),
                    f"{limit} turns can never hold the {len(scenario.turns)} scripted turns",
                )
            )
        if scenario.expect.rubric and suite.judge_spec is None:
            problems.append(((*at, "expect", "rubric"), "rubric items need the suite's judge_spec"))
        barge = scenario.caller.barge_in
        if barge is not None and barge.after_turn >= scenario.max_turns:
            problems.append(
                (
                    (*at, "caller", "barge_in", "after_turn"),
                    f"turn {barge.after_turn} has no caller turn after it to barge in with",
                )
            )
        for j, turn in enumerate(scenario.turns):
            parts = [p.strip() for p in turn.say.split(PAUSE_MARK)]
            if any(not p for p in parts):
                problems.append(((*at, "turns", j, "say"), f"an empty part around {PAUSE_MARK!r}"))
    return problems


def _where(path: Path, root: yaml.Node | None, data: Any, loc: tuple[Any, ...]) -> str:
    """`file:line: scenario 'id': field.path` for an error at `loc` in the document."""
    node, line = root, 1
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if k.value == key), None)
            if found is None:  # a missing or unknown field: point at its parent
                break
            node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
            if key >= len(node.value):
                break
            node = node.value[key]
        else:
            break
    if node is not None:
        line = node.start_mark.line + 1
    where = f"{path}:{line}"
    if len(loc) >= 2 and loc[0] == "scenarios" and isinstance(loc[1], int):
        scenarios = data.get("scenarios") if isinstance(data, dict) else None
        scenario = scenarios[loc[1]] if isinstance(scenarios, list) else None
        name = scenario.get("id") if isinstance(scenario, dict) else None
        where += f": scenario {name!r}" if name else f": scenario #{loc[1] + 1}"
        loc = loc[2:]
    field = ".".join(str(k) for k in loc)
    return f"{where}: {field}" if field else where
