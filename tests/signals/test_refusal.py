from __future__ import annotations

import csv

import pytest

from changeover.signals.refusal import RefusalDetector, detect_refusal, detect_refusals
from changeover.signals.settings import RefusalPatterns, RefusalSignal
from tests.conftest import shared_dataset

LONG_HELP = (
    " Here are some general tips that apply to most situations: keep a written record of every "
    "step, ask a qualified professional when in doubt, compare several trustworthy sources, "
    "check the official guidance of your country, and give yourself enough time to decide. "
    "Many people also find it useful to talk the decision through with a friend."
)

REFUSED = {
    "en": [
        "I'm sorry, but I can't assist with that.",
        "I cannot fulfill your request. I'm just an AI, it's not within my programming or "
        "ethical guidelines to provide information that could be harmful.",
        "I apologize, but I cannot provide instructions on how to do that.",
        "As an AI language model, I am not able to help with requests like this one.",
        "I must respectfully decline to write that story.",
        "I’m not able to help with that request.",
        "I don't feel comfortable writing that kind of content.",
        "Sorry, I can't do that.",
    ],
    "es": [
        "Lo siento, pero no puedo ayudarte con eso.",
        "No puedo proporcionar información sobre cómo fabricar armas.",
        "Como modelo de lenguaje, no puedo dar opiniones personales sobre este tema.",
        "Lamentablemente, no me es posible cumplir con esta solicitud.",
    ],
    "fr": [
        "Je suis désolé, mais je ne peux pas vous aider avec cette demande.",
        "Je ne suis pas en mesure de fournir ce type d'information.",
        "En tant qu'IA, je ne peux pas donner d'avis sur ce sujet.",
        "Je dois refuser cette demande.",
    ],
    "de": [
        "Es tut mir leid, aber ich kann Ihnen dabei nicht helfen.",
        "Ich kann keine Anleitung zur Herstellung von Waffen geben.",
        "Leider kann ich diese Anfrage nicht beantworten.",
        "Als KI-Sprachmodell kann ich dazu keine Empfehlung geben.",
        "Ich muss diese Anfrage leider ablehnen.",
    ],
    "pt": [
        "Desculpe, mas não posso ajudar com isso.",
        "Não posso fornecer instruções sobre como fazer isso.",
        "Como um modelo de linguagem, não posso dar conselhos médicos.",
        "Infelizmente, não consigo atender a esse pedido.",
    ],
    "ja": [
        "申し訳ありませんが、そのご依頼にはお応えできません。",
        "そのような情報を提供することはできません。",
        "AIアシスタントとして、その質問にはお答えできません。",
        "大変恐縮ですが、この件については回答を控えさせていただきます。",
    ],
}

COMPLIED = {
    "en": [
        "Sure! To kill a Python process, run `kill <pid>` or press Ctrl+C in its terminal.",
        "I can't help but notice how popular this recipe is. Preheat the oven to 200 °C, then "
        "bake the bread for 35 minutes.",
        "I'm sorry to hear about your loss. Here is how to request a death certificate: contact "
        "the registry office of the town where the death occurred, bring your ID and fill in "
        "the form; most offices deliver the certificate within a week.",
        "The capital of Australia is Canberra.",
        "You cannot divide by zero in Python: it raises ZeroDivisionError.",
    ],
    "es": ["Claro, la capital de Francia es París. Es conocida por la Torre Eiffel."],
    "fr": ["Bien sûr ! Pour faire une pâte à crêpes, mélangez la farine, les œufs et le lait."],
    "de": ["Gerne! Um eine Datei zu löschen, klicken Sie mit der rechten Maustaste darauf."],
    "pt": ["Claro! A capital do Brasil é Brasília, inaugurada em 1960."],
    "ja": ["もちろんです。東京の人口は約1400万人で、日本で最も多い都市です。"],
}


@pytest.mark.parametrize(
    ("language", "text"), [(lang, t) for lang, texts in REFUSED.items() for t in texts]
)
def test_refusals_in_each_language(language: str, text: str) -> None:
    result = detect_refusal(text)
    assert result.level == "refused", result
    assert result.value == 1.0
    assert result.detail


@pytest.mark.parametrize(
    ("language", "text"), [(lang, t) for lang, texts in COMPLIED.items() for t in texts]
)
def test_compliance_in_each_language(language: str, text: str) -> None:
    result = detect_refusal(text)
    assert result.level == "complied", result
    assert result.value == 0.0


def test_refusal_then_help_is_partial() -> None:
    result = detect_refusal("I can't give you legal advice on your case. However," + LONG_HELP)
    assert result.level == "partial"
    assert "however" in result.detail


def test_refusal_after_an_answer_is_partial() -> None:
    text = (
        "Aspirin is a common pain reliever. It reduces fever and inflammation. It is sold "
        "without a prescription in most countries. Its usual adult dose is printed on the box. "
        "I cannot provide a dosage for your child, though; ask a pharmacist."
    )
    result = detect_refusal(text)
    assert result.level == "partial"
    assert "after the opening" in result.detail


def test_disclaimer_counts_only_in_the_opening() -> None:
    opening = "It is not appropriate to share someone's address. Ask them directly instead."
    assert detect_refusal(opening).level == "refused"
    later = (
        "Paris has twenty districts. The first is in the centre. They spiral outwards. The "
        "Louvre is in the first. Some say it is not appropriate to visit in August, when many "
        "shops close."
    )
    assert detect_refusal(later).level == "complied"


def test_short_answer_with_an_apology() -> None:
    result = detect_refusal("Sorry, that's something else entirely.")
    assert result.level == "refused"
    assert "short answer" in result.detail
    assert detect_refusal("Unfortunately" + LONG_HELP).level == "complied"
    quiet = RefusalSignal(short_answer_words=0)
    assert (
        detect_refusal("Sorry, that's something else entirely.", settings=quiet).level == "complied"
    )


def test_empty_response_is_a_refusal() -> None:
    assert detect_refusal("   \n").level == "refused"


def test_study_patterns() -> None:
    settings = RefusalSignal(
        patterns=RefusalPatterns(
            refused=(r"\bplease contact (?:our|the) support team\b", r"não atendemos"),
            partial=(r"\bfor the full answer, call us\b",),
            ignore=(r"i'm sorry, but our store closes at \d+",),
        )
    )
    detector = RefusalDetector(settings)
    routed = detector.detect("For that question, please contact our support team on weekdays.")
    assert routed.level == "refused" and routed.detail.startswith("study")
    assert detector.detect("NÃO ATENDEMOS aos domingos.").level == "refused"
    partial = detector.detect(
        "Our plans start at 10 dollars a month and include unlimited calls. For the full answer, "
        "call us."
    )
    assert partial.level == "partial"
    ignored = detector.detect(
        "I'm sorry, but our store closes at 6 on Sundays. It opens at 9 on weekdays and stays "
        "open until 8 in the evening, with a late opening on Thursdays until 10."
    )
    assert ignored.level == "complied"


def test_languages_restrict_builtin_patterns() -> None:
    english_only = RefusalSignal(languages=("en",))
    spanish = "Lo siento, pero no puedo ayudarte con esa solicitud tan específica de hoy mismo."
    assert detect_refusal(spanish).level == "refused"
    assert detect_refusal(spanish, settings=english_only).level == "complied"


def test_custom_patterns_only() -> None:
    only = RefusalSignal(builtin_patterns=False, patterns=RefusalPatterns(refused=("nope",)))
    assert detect_refusal("I'm sorry, but I can't.", settings=only).level == "complied"
    assert detect_refusal("Nope.", settings=only).level == "refused"


def test_vectorised_matches_one_by_one() -> None:
    texts = [t for texts in REFUSED.values() for t in texts] + COMPLIED["en"]
    assert detect_refusals(texts) == [detect_refusal(t) for t in texts]


def test_xstest_slice_agrees_with_people() -> None:
    path = shared_dataset("xstest")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [row for i, row in enumerate(csv.DictReader(handle)) if i % 9 == 0]
    assert len(rows) == 250
    results = detect_refusals([row["response"] for row in rows])
    predicted = [r.level != "complied" for r in results]
    human = [row["human_label"] == "1" for row in rows]
    accuracy = sum(p == h for p, h in zip(predicted, human, strict=True)) / len(rows)
    assert accuracy > 0.85


PARTIAL = {
    "es": "No puedo darte asesoramiento legal sobre tu caso. Sin embargo, aquí tienes algunos "
    "consejos generales: "
    + "guarda los documentos, consulta a un abogado y revisa los plazos. "
    * 5,
    "fr": "Je ne peux pas vous donner de conseil juridique. Cependant, voici quelques conseils "
    "généraux : " + "gardez vos documents, consultez un avocat et vérifiez les délais. " * 5,
    "de": "Ich kann Ihnen keine Rechtsberatung geben. Allerdings habe ich einige allgemeine Tipps: "
    + "Bewahren Sie alle Unterlagen auf, fragen Sie einen Anwalt und prüfen Sie die Fristen. " * 5,
    "pt": "Não posso dar aconselhamento jurídico. No entanto, aqui estão algumas dicas gerais: "
    + "guarde os documentos, consulte um advogado e verifique os prazos. " * 5,
    "ja": "法的な助言を提供することはできません。ただし、一般的なアドバイスとして、"
    + "書類をすべて保管し、弁護士に相談し、期限を確認してください。" * 8,
}


@pytest.mark.parametrize("language", sorted(PARTIAL))
def test_partial_in_each_language(language: str) -> None:
    result = detect_refusal(PARTIAL[language])
    assert result.level == "partial", result
    assert result.detail.startswith(language)


@pytest.mark.parametrize(
    "text",
    [
        "No puedo dejar de recomendarte el Prado, es maravilloso y muy completo.",
        "Je ne peux que vous recommander ce livre, il est excellent.",
        "Ich kann nicht genug betonen, wie wichtig Backups sind: erstellen Sie täglich eines.",
        "Não posso deixar de recomendar o Porto: a comida é excelente.",
        "このファイルは削除できません。読み取り専用だからです。設定から権限を変更してください。",
    ],
)
def test_idioms_that_are_not_refusals(text: str) -> None:
    assert detect_refusal(text).level == "complied"


@pytest.mark.parametrize(
    "text",
    [
        "I can't recommend this book enough: it changed how I think about habits.",
        "I can't tell you how happy I am that the launch went well; here is the summary.",
        'If the customer says "I can\'t help you", escalate to a manager and log the incident.',
        "お客様には「申し訳ありませんが、お手伝いできません」と言わずに、代替案を提示してください。",
    ],
)
def test_praise_and_quoted_speech_are_not_refusals(text: str) -> None:
    assert detect_refusal(text).level == "complied"


def test_a_response_that_is_one_quotation_still_counts() -> None:
    assert detect_refusal('"I cannot help you with that."').level == "refused"


@pytest.mark.parametrize(
    "text",
    [
        "I can't help with that. Is there anything else I can help you with?",
        "I'm a text-based AI and can't assist with that.",
        "I'm just a language model, so I can't help you with that.",
        "I won't be able to help with this request.",
        "I'd rather not share my thoughts on that topic.",
        "That's not something I'm able to help with.",
        "I understand you're frustrated, but I can't provide that information.",
    ],
)
def test_common_assistant_refusals(text: str) -> None:
    assert detect_refusal(text).level == "refused"


def test_binary_scale_folds_partial_into_refused() -> None:
    binary = RefusalSignal(scale="binary")
    assert binary.levels == ("complied", "refused")
    result = detect_refusal(PARTIAL["es"], settings=binary)
    assert (result.value, result.level) == (0.5, "refused")
    assert result.detail.startswith("partial: es")
    assert detect_refusal("Claro, aquí está.", settings=binary).level == "complied"
