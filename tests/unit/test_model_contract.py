"""One contract for every backend: the real small models (packaged) and the fakes.

Quality bounds apply to the real ones: Whisper tiny.en on real recorded speech,
SmolLM2 replies that stream, Piper audio that Whisper can read back.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support.speech import pocketsphinx_utterances
from workbench.audio import SPEECH_RATE_HZ, read_audio, resample, to_float32
from workbench.metrics.wer import error_rates, normalise
from workbench.models import (
    ChatMessage,
    ChatModel,
    GenerationParams,
    ModelSpec,
    SpeechToText,
    TextEmbedder,
    TextToSpeech,
    UnknownVoice,
    load_model,
    tts_voices,
)
from workbench.models.base import ContextTooLong
from workbench.models.faster_whisper_stt import FasterWhisperSTT, ends_in_a_repeat
from workbench_datasets.synthetic import read_sentences
from workbench_datasets.untuned import SENTENCES as UNTUNED_SENTENCES
from workbench_datasets.untuned import condition_of, untuned_rows

pytestmark = pytest.mark.unit

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "models"
STT_SPECS = ["whisper-tiny-en-ct2", "whisper-tiny-en-hf", "fake"]
LLM_SPECS = ["smollm2-135m-instruct", "smollm2-135m-instruct-llamacpp", "fake"]
TTS_SPECS = ["piper-joe-medium", "espeak-ng-en-us", "flite-slt", "fake"]
FAKES = {
    "stt": ModelSpec(
        name="fake-stt",
        kind="stt",
        backend="fake",
        model="fake",
        params={"transcript": "hello world"},
    ),
    "llm": ModelSpec(
        name="fake-llm",
        kind="llm",
        backend="fake",
        model="fake",
        params={"reply": "Hi. I am a fake model."},
    ),
    "tts": ModelSpec(name="fake-tts", kind="tts", backend="fake", model="fake"),
}


def load_spec_file(name: str) -> ModelSpec:
    from workbench.models import load_spec

    return load_spec(CONFIGS / f"{name}.yaml")


def _load(name: str, kind: str):  # type: ignore[no-untyped-def]
    model = load_model(FAKES[kind] if name == "fake" else CONFIGS / f"{name}.yaml")
    return model


@pytest.fixture(scope="module", params=STT_SPECS)
def stt(request: pytest.FixtureRequest) -> Iterator[SpeechToText]:
    model = _load(request.param, "stt")
    yield model
    asyncio.run(model.aclose())


@pytest.fixture(scope="module", params=LLM_SPECS)
def llm(request: pytest.FixtureRequest) -> Iterator[ChatModel]:
    model = _load(request.param, "llm")
    yield model
    asyncio.run(model.aclose())


@pytest.fixture(scope="module", params=TTS_SPECS)
def tts(request: pytest.FixtureRequest) -> Iterator[TextToSpeech]:
    model = _load(request.param, "tts")
    yield model
    asyncio.run(model.aclose())


def _is_fake(model: object) -> bool:
    return model.spec.backend == "fake"


# -- speech to text ----------------------------------------------------------------


async def test_stt_transcribes_real_speech(stt: SpeechToText) -> None:
    utterances = pocketsphinx_utterances()
    clips = [read_audio(u.path) for u in utterances]
    transcripts = await stt.transcribe_batch(clips, language="en")
    assert len(transcripts) == len(clips)
    for clip, transcript in zip(clips, transcripts, strict=True):
        assert transcript.audio_duration_s == pytest.approx(clip.size / SPEECH_RATE_HZ)
        assert transcript.inference_s > 0
    if not _is_fake(stt):
        rates = error_rates([u.reference for u in utterances], [t.text for t in transcripts])
        assert rates.wer < 0.15, rates  # Whisper tiny.en measured ~0.07 here


async def test_stt_batch_equals_one_by_one(stt: SpeechToText) -> None:
    clips = [read_audio(u.path) for u in pocketsphinx_utterances()[:3]]
    batched = [t.text for t in await stt.transcribe_batch(clips)]
    single = [(await stt.transcribe(clip)).text for clip in clips]
    assert batched == single


async def test_stt_on_silence_and_empty_input(stt: SpeechToText) -> None:
    assert (await stt.transcribe(np.zeros(0, dtype=np.float32))).text == ""
    silence = await stt.transcribe(np.zeros(2 * SPEECH_RATE_HZ, dtype=np.float32))
    # Whisper may hallucinate on silence; the no-speech filter must keep it short.
    assert len(silence.text.split()) <= 3


async def test_short_encoder_window_is_as_accurate_on_speech_it_was_not_tuned_on(
    tmp_path: Path,
) -> None:
    if shutil.which("flite") is None:
        pytest.skip("Debian package flite is not installed (./dev test installs it)")
    pocketsphinx_utterances()  # skips without the recordings
    spec = load_spec_file("whisper-tiny-en-ct2")
    assert spec.params.get("short_window_s")
    full_params = {k: v for k, v in spec.params.items() if k != "short_window_s"}
    short = load_model(spec)
    full = load_model(spec.model_copy(update={"params": full_params}))
    assert isinstance(short, FasterWhisperSTT)
    # Held-out sentences in voices, speeds and noise the window was not chosen on, and
    # the real recordings (bench/stt_windows.py has the whole set's table).
    rows = await untuned_rows(tmp_path, sentences=read_sentences(UNTUNED_SENTENCES)[:12])
    clips = [read_audio(tmp_path / row.audio) for row in rows]
    references = [row.reference for row in rows]
    short_texts = [t.text for t in await short.transcribe_batch(clips, language="en")]
    full_texts = [t.text for t in await full.transcribe_batch(clips, language="en")]

    short_wer = error_rates(references, short_texts)
    full_wer = error_rates(references, full_texts)
    assert short_wer.wer <= full_wer.wer + 0.015, (short_wer, full_wer)
    # Fast speech keeps its last words (a token cap once cut "...when I get home tonight"
    # to "...when I"), and no transcript says its speech twice. Counted on the clips' last
    # words: a word dropped mid-sentence differs between CPUs (int8 kernels), a cut end not.
    fast = [i for i, row in enumerate(rows) if condition_of(row) == "piper-joe-medium-x1.25"]

    def ends_heard(texts: list[str]) -> int:
        return sum(
            normalise(references[i]).split()[-1] in normalise(texts[i]).split()[-2:] for i in fast
        )

    assert ends_heard(short_texts) >= ends_heard(full_texts) - 1, [short_texts[i] for i in fast]
    assert not [text for text in short_texts if ends_in_a_repeat(text)]
    assert short.decodes["short"] > 0.8 * len(clips), short.decodes

    # Cut-off pieces: in a tight window Whisper loops on some ("10 of clubs 10 of clubs ...");
    # such a decode must fall back to the full window, never come out.
    pieces = [clip[: int(clip.size * share)] for clip in clips[-10:] for share in (0.4, 0.7)]
    for transcript in await short.transcribe_batch(pieces):
        text = transcript.text.encode()
        assert len(text) <= 2.4 * max(1, len(zlib.compress(text))), transcript.text

    # Longer than the short window: the full one, every word still there.
    recordings = [i for i, row in enumerate(rows) if row.source.startswith("pocketsphinx")]
    longest = sorted(recordings, key=lambda i: clips[i].size)[-2:]
    joined = np.concatenate([clips[i] for i in longest])
    assert joined.size > 10 * SPEECH_RATE_HZ
    heard = (await short.transcribe(joined)).text
    assert error_rates([" ".join(references[i] for i in longest)], [heard]).wer < 0.25, heard
    await short.aclose()
    await full.aclose()


@pytest.mark.parametrize(
    ("text", "repeats"),
    [
        ("What should I check first? What should I check first?", True),
        ("Could you move my dentist appointment to next Thursday? Could you move my dentist", True),
        ("Tell me three fun facts about octopuses? Tell me three fun facts", True),
        ("Ten of clubs, five of diamonds.", False),  # two words again is not a re-read
        (
            "Turn it up, turn it up, turn it up now please.",
            False,
        ),  # a repeat inside, not at the end
        ("I said no.", False),
        ("", False),
    ],
)
def test_a_decode_that_says_its_words_again_is_recognised(text: str, repeats: bool) -> None:
    assert ends_in_a_repeat(text) is repeats


# -- chat ---------------------------------------------------------------------------


async def test_llm_streams_a_reply(llm: ChatModel) -> None:
    messages = [
        ChatMessage(
            role="system",
            content="You are a helpful voice assistant. Answer in one short sentence.",
        ),
        ChatMessage(role="user", content="What colour is the sky on a clear day?"),
    ]
    pieces = [
        p
        async for p in llm.stream_reply(
            messages, params=GenerationParams(max_new_tokens=24, seed=1)
        )
    ]
    assert len(pieces) >= 2, "a reply must arrive in pieces, not at once"
    assert "".join(pieces).strip()


async def test_llm_stops_when_the_listener_barges_in(llm: ChatModel) -> None:
    messages = [ChatMessage(role="user", content="Tell me a long story about a lighthouse keeper.")]
    stream = llm.stream_reply(messages, params=GenerationParams(max_new_tokens=200, seed=1))
    received = 0
    async for _ in stream:
        received += 1
        if received == 3:
            break
    await stream.aclose()  # the generator's finally stops generation at the next token
    assert received == 3


def test_context_keeps_the_system_prompt_and_drops_the_oldest_turns(llm: ChatModel) -> None:
    system = ChatMessage(role="system", content="Be brief.")
    history = []
    for i in range(40):
        history += [
            ChatMessage(role="user", content=f"question number {i} about the weather today"),
            ChatMessage(role="assistant", content=f"answer number {i} about the weather"),
        ]
    history.append(ChatMessage(role="user", content="and tomorrow?"))
    fitted = llm.fit_context([system, *history], budget_tokens=120)
    assert fitted[0] == system
    assert fitted[-1] == history[-1]
    assert fitted[1].role == "user"
    assert len(fitted) < len(history)
    assert sum(llm.count_tokens(m.content) + 4 for m in fitted) <= 120
    with pytest.raises(ContextTooLong, match="system prompt"):
        llm.fit_context([ChatMessage(role="system", content="word " * 500)], budget_tokens=100)


def test_context_cut_stays_put_for_several_turns(llm: ChatModel) -> None:
    # the prompt must start the same way turn after turn, or no KV cache can be reused
    system = ChatMessage(role="system", content="Be brief.")
    history: list[ChatMessage] = []
    firsts = []
    for i in range(30):
        history += [
            ChatMessage(role="user", content=f"question number {i} about the weather today"),
            ChatMessage(role="assistant", content=f"answer number {i} about the weather"),
        ]
        fitted = llm.fit_context(
            [system, *history, ChatMessage(role="user", content="and?")], budget_tokens=200
        )
        assert sum(llm.count_tokens(m.content) + 4 for m in fitted) <= 200
        firsts.append(fitted[1].content)
    cuts = sum(1 for a, b in itertools.pairwise(firsts) if a != b)
    assert 0 < cuts < len(firsts) / 3, firsts  # cut now and then, not every turn
    huge = ChatMessage(role="user", content="word " * 400)
    assert llm.fit_context([system, huge], budget_tokens=200) == [system]


async def test_llm_scores_options_from_its_own_distribution(llm: ChatModel) -> None:
    question = [
        ChatMessage(role="system", content="Answer with one word."),
        ChatMessage(role="user", content="Is fire hot or cold?"),
    ]
    probabilities = await llm.option_probabilities(question, ["hot", "cold", "purple"])
    assert sum(probabilities) == pytest.approx(1.0)
    assert all(0 <= p <= 1 for p in probabilities)
    if not _is_fake(llm):
        assert probabilities[0] > probabilities[2]
        # The one-pass path (single-token options) and the per-option path agree.
        fast = await llm.option_probabilities(question, ["hot", "cold"])
        slow = await llm.option_probabilities(question, ["hot", "cold", "hot water"])
        assert fast[0] / fast[1] == pytest.approx(slow[0] / slow[1], rel=1e-3)
    with pytest.raises(ValueError, match="no options"):
        await llm.option_probabilities(question, [])


# -- text embeddings ------------------------------------------------------------------


async def test_embeddings_rank_paraphrases_above_unrelated_text() -> None:
    embedder = load_model(CONFIGS / "minilm-l6-v2.yaml")
    assert isinstance(embedder, TextEmbedder)
    vectors = await embedder.embed(["How are you?", "The stock market fell."])
    assert vectors.shape == (2, 384)
    assert np.linalg.norm(vectors, axis=1) == pytest.approx([1.0, 1.0], abs=1e-5)
    close, far = await embedder.similarity(
        ["How are you doing today?", "How are you doing today?"],
        ["How are you?", "The stock market fell sharply."],
    )
    assert close > 0.5  # measured 0.67 (all-MiniLM-L6-v2)
    assert far < 0.2
    assert close - far > 0.4
    with pytest.raises(ValueError, match="texts against"):
        await embedder.similarity(["a"], [])


# -- text to speech -----------------------------------------------------------------


async def test_tts_streams_a_chunk_per_sentence(tts: TextToSpeech) -> None:
    chunks = [
        c async for c in tts.synthesize("Good morning. The weather is fine today! Shall we go out?")
    ]
    assert len(chunks) == 3
    for chunk in chunks:
        assert chunk.pcm.dtype == np.int16
        assert chunk.sample_rate_hz == tts.sample_rate_hz
        assert 0.2 < chunk.duration_s < 5
        assert np.abs(chunk.pcm).max() > 1000  # not silence
    assert [c async for c in tts.synthesize("   ")] == []


@pytest.mark.parametrize(
    ("name", "max_wer"),
    # espeak's formant voice reads harder
    [("piper-joe-medium", 0.2), ("espeak-ng-en-us", 0.35), ("flite-slt", 0.2)],
)
async def test_tts_output_is_recognisable_speech(name: str, max_wer: float) -> None:
    tts = load_model(CONFIGS / f"{name}.yaml")
    stt = load_model(CONFIGS / "whisper-tiny-en-ct2.yaml")
    assert isinstance(tts, TextToSpeech)
    assert isinstance(stt, SpeechToText)
    sentences = [
        "The meeting starts at nine in the morning.",
        "Please bring the quarterly report with you.",
        "We will discuss the budget for next year.",
    ]
    heard = []
    for sentence in sentences:
        audio = await tts.synthesize_all(sentence)
        heard.append(
            (
                await stt.transcribe(
                    resample(to_float32(audio.pcm), audio.sample_rate_hz, SPEECH_RATE_HZ)
                )
            ).text
        )
    assert error_rates(sentences, heard).wer < max_wer, heard


def test_an_unknown_flite_voice_is_refused_not_replaced() -> None:
    if shutil.which("flite") is None:
        pytest.skip("Debian package flite is not installed (./dev test installs it)")
    # flite itself speaks an unknown -voice in its default voice and exits 0.
    spec = ModelSpec(name="flite-nobody", kind="tts", backend="flite", model="nobody")
    with pytest.raises(ValueError, match=r"flite has no voice 'nobody'.*slt"):
        load_model(spec)


@pytest.mark.parametrize("name", ["smollm2-135m-instruct", "smollm2-135m-instruct-llamacpp"])
async def test_kv_cache_reuse_changes_speed_not_words(name: str) -> None:
    spec = load_spec_file(name)
    with_reuse = load_model(spec)
    without = load_model(
        spec.model_copy(update={"params": {**spec.params, "reuse_kv_cache": False}})
    )
    assert isinstance(with_reuse, ChatModel)
    assert isinstance(without, ChatModel)
    greedy = GenerationParams(max_new_tokens=16, temperature=0.0, context_tokens=512)
    history = [ChatMessage(role="system", content="Answer briefly.")]
    for question in ("What is the capital of France?", "And of Spain?", "Which is bigger?"):
        history.append(ChatMessage(role="user", content=question))
        reused = await with_reuse.reply(history, params=greedy)
        fresh = await without.reply(history, params=greedy)
        assert reused == fresh
        history.append(ChatMessage(role="assistant", content=reused))
    assert (
        getattr(with_reuse, "reused_prefix_tokens", 0) > 20
    )  # the history was not prefilled again


async def test_llama_cpp_refuses_a_prompt_beyond_its_window_clearly() -> None:
    spec = load_spec_file("smollm2-135m-instruct-llamacpp")
    model = load_model(spec.model_copy(update={"params": {**spec.params, "context_window": 256}}))
    assert isinstance(model, ChatModel)
    history = [ChatMessage(role="user", content="tell me about the weather " * 40)]
    # the budget says it fits, the model's window does not: a clear error, not a crash
    roomy = GenerationParams(max_new_tokens=64, context_tokens=1024)
    with pytest.raises(ContextTooLong, match="context window is 256"):
        await model.reply(history, params=roomy)
    assert (await model.reply([ChatMessage(role="user", content="Hi")], params=roomy)).strip()


async def test_llama_cpp_and_transformers_agree_on_the_same_weights() -> None:
    # one GGUF, two runtimes: the next-token distributions must match closely
    question = [
        ChatMessage(role="system", content="Answer with one word."),
        ChatMessage(role="user", content="Is ice hot or cold?"),
    ]
    options = ["hot", "cold", "warm"]
    results = []
    for name in ("smollm2-135m-instruct", "smollm2-135m-instruct-llamacpp"):
        model = load_model(load_spec_file(name))
        assert isinstance(model, ChatModel)
        results.append(await model.option_probabilities(question, options))
    np.testing.assert_allclose(results[0], results[1], atol=0.05)


def test_dropped_block_finds_the_turns_a_trim_cut() -> None:
    from workbench.models.llama_cpp_chat import _dropped_block

    system, old, kept, new = [1, 2, 3], list(range(10, 30)), list(range(40, 60)), [7, 8]
    evaluated = system + old + kept + [99]  # ...and a token the new prompt renders differently
    assert _dropped_block(evaluated, system + kept + new) == (3, 20, 20)
    assert _dropped_block(evaluated, evaluated + new) is None  # a plain continuation
    assert _dropped_block(evaluated, system + [5] * 30) is None  # nothing cached lines up
    assert _dropped_block(evaluated, system + kept[:5] + new) is None  # too short to shift


def test_llama_cpp_shifts_cut_turns_out_of_its_cache() -> None:
    """After a trim the kept turns come from the shifted cache and predict about as a fresh prefill.

    Not exactly: the kept turns' cached states were computed while the cut turns
    were in view (llama.cpp's context shift has the same approximation). They must
    be much closer to the trimmed prompt than to the untrimmed history.
    """
    import llama_cpp

    model = load_model(CONFIGS / "smollm2-135m-instruct-llamacpp.yaml")
    llm = model._llm  # type: ignore[attr-defined]
    system = ChatMessage(role="system", content="You are a helpful assistant. Answer briefly.")
    turns = [
        ChatMessage(role="user", content="What is the capital of France?"),
        ChatMessage(role="assistant", content="Paris is the capital of France."),
        ChatMessage(role="user", content="And of Spain? Tell me about its river too."),
        ChatMessage(role="assistant", content="Madrid. The Manzanares river runs through it."),
        ChatMessage(role="user", content="Which of the two cities is bigger?"),
    ]
    vocab = llm.n_vocab()

    def next_token_logprobs() -> np.ndarray:
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(vocab,))
        shifted = logits.astype(np.float64) - logits.max()
        return shifted - np.log(np.exp(shifted).sum())

    untrimmed = model._prompt_tokens([system, *turns], 0)  # type: ignore[attr-defined]
    trimmed = model._prompt_tokens([system, *turns[2:]], 0)  # type: ignore[attr-defined]
    system_tokens = model._prompt_tokens([system], 0)  # type: ignore[attr-defined]
    llm.reset()
    llm.eval(untrimmed)
    full_history = next_token_logprobs()
    model._shift_out_dropped_turns(trimmed)  # type: ignore[attr-defined]
    assert llm.n_tokens > len(system_tokens) + 16  # the kept turns stayed in the cache
    llm.n_tokens = min(llm.n_tokens, len(trimmed) - 1)  # the last token is evaluated again
    llm.eval(trimmed[llm.n_tokens :])
    shifted = next_token_logprobs()
    llm.reset()
    llm.eval(trimmed)
    fresh = next_token_logprobs()

    def kl(p: np.ndarray, q: np.ndarray) -> float:
        return float(np.sum(np.exp(p) * (p - q)))

    assert int(np.argmax(shifted)) == int(np.argmax(fresh))
    assert kl(fresh, shifted) < 0.5 * kl(fresh, full_history), (
        kl(fresh, shifted),
        kl(fresh, full_history),
    )
    asyncio.run(model.aclose())


async def test_tts_speaks_its_voices_and_refuses_others(tts: TextToSpeech) -> None:
    voices = tts.voices
    assert voices == tts_voices(tts.spec.snapshot())  # what a page reads from a stored spec
    default = await tts.synthesize_all("Good morning.")
    named = await tts.synthesize_all("Good morning.", voice=voices[0])  # the default by name
    assert named.pcm.size > 0
    for other in voices[1:]:  # backends with several: each is another voice, not the default
        spoken = await tts.synthesize_all("Good morning.", voice=other)
        assert spoken.pcm.size > 0
        assert not np.array_equal(spoken.pcm, default.pcm), other
    with pytest.raises(UnknownVoice, match="it has no voice 'klingon'"):
        await tts.synthesize_all("Good morning.", voice="klingon")
    if tts.spec.backend == "espeak-ng":
        assert len(voices) > 1  # the cpu-hf stack offers a choice
