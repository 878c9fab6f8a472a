"""A deterministic synthetic news corpus: articles of recombined sentences with varied names,
places, dates and numbers, so that BM25, the dense index and the spelling corrector see a
vocabulary and a spread of paragraph lengths like real reporting (not "lorem ipsum").

``write_corpus(folder, n_paragraphs, seed)`` writes ``.txt`` articles (title line, then
paragraphs separated by blank lines) that ingest keeps whole: every paragraph is unique and
none looks like boilerplate. ``questions(...)`` makes questions about paragraphs that exist.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

FIRST = (
    "Ana Carlos María José Luis Elena Pedro Lucía Jorge Sofía Miguel Carmen Rosa Diego Valeria "
    "Hugo Andrea Raúl Camila Javier Paula Fernando Gabriela Ricardo Isabel Martín Daniela Tomás "
    "Teresa Alberto Mariana Sergio Natalia Óscar Patricia Eduardo Claudia Manuel Beatriz Ignacio "
    "Amina Kwame Yuki Hiroshi Priya Arjun Fatima Omar Ingrid Lars Olga Dmitri Chen Mei Samuel "
    "Grace Thomas Emma Henry Clara"
).split()
LAST = (
    "García Rodríguez Martínez López González Pérez Sánchez Ramírez Torres Flores Rivera Gómez "
    "Díaz Cruz Morales Reyes Gutiérrez Ortiz Chávez Ramos Castillo Vargas Mendoza Herrera "
    "Medina Aguilar Castro Jiménez Rojas Navarro Salazar Delgado Vega Paredes Quispe Huamán "
    "Mamani Zela Noblecilla Boluarte Okafor Mensah Tanaka Sato Sharma Patel Haddad Nasser "
    "Johansson Lindqvist Petrova Ivanov Wang Li Kowalski Novak Fischer Moreau Rossi Silva Costa"
).split()
CITIES = (
    "Lima",
    "Cusco",
    "Arequipa",
    "Trujillo",
    "Piura",
    "Iquitos",
    "Mexico City",
    "Guadalajara",
    "Monterrey",
    "Bogotá",
    "Medellín",
    "Quito",
    "Guayaquil",
    "La Paz",
    "Santiago",
    "Valparaíso",
    "Buenos Aires",
    "Córdoba",
    "Montevideo",
    "Asunción",
    "Caracas",
    "Brasília",
    "São Paulo",
    "Madrid",
    "Seville",
    "Lisbon",
    "Geneva",
    "Vienna",
    "Nairobi",
    "Accra",
    "Lagos",
    "Tokyo",
    "Osaka",
    "Mumbai",
    "Delhi",
    "Cairo",
    "Oslo",
    "Stockholm",
    "Warsaw",
    "Prague",
    "Berlin",
    "Paris",
    "Rome",
)
ORGS = (
    "the Ministry of Health",
    "the Constitutional Court",
    "the Central Bank",
    "Congress",
    "the electoral board",
    "the national police",
    "the Supreme Court",
    "the mining union",
    "the teachers' federation",
    "the chamber of commerce",
    "the water authority",
    "the ombudsman's office",
    "the prosecutor's office",
    "the transport ministry",
    "the regional government",
    "the port authority",
    "the energy regulator",
    "the farmers' association",
    "the university council",
    "the city council",
    "the Andean Community",
    "the Organization of American States",
    "the World Bank",
    "the International Monetary Fund",
    "the Red Cross",
    "the weather service",
)
ROLES = (
    "foreign minister",
    "finance minister",
    "mayor",
    "governor",
    "judge",
    "prosecutor",
    "union leader",
    "spokesperson",
    "economist",
    "lawyer",
    "senator",
    "ambassador",
    "police chief",
    "health minister",
    "central bank president",
    "opposition leader",
    "professor",
    "engineer",
    "mining executive",
    "council member",
)
TOPICS = (
    "budget",
    "water supply",
    "election",
    "mining permit",
    "railway line",
    "port expansion",
    "pension reform",
    "vaccination campaign",
    "trade agreement",
    "fishing quota",
    "drought",
    "flood defences",
    "teachers' strike",
    "fuel subsidy",
    "highway concession",
    "asylum request",
    "extradition case",
    "tax reform",
    "copper exports",
    "airport tender",
    "housing programme",
    "anti-corruption inquiry",
    "school meals",
    "power cuts",
    "coffee harvest",
    "census",
    "border crossing",
    "refinery",
    "minimum wage",
    "hospital contract",
)
MONTHS = (
    "January February March April May June July August September October November December"
).split()
DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()

SENTENCES = (
    "{person}, the {role}, said on {day} that {org} would review the {topic} before {month}.",
    "The {topic} will cost about {money} million soles, according to figures released in {city}.",
    "{org} approved the {topic} on {date} by {votes} votes to {votes2}.",
    "Protesters gathered outside the offices of {org} in {city}, demanding changes to the {topic}.",
    "{person} told reporters in {city} that the {topic} had been delayed for {small} months.",
    "Officials estimate that {count} people are affected by the {topic} in the {region} region.",
    "The {role} {person} resigned on {date} after criticism of the handling of the {topic}.",
    "A report by {org} found that {percent} percent of the {topic} funds had not been spent.",
    "In {year}, a similar {topic} in {city} was suspended after a court ruling.",
    "{person} is expected to appear before {org} on {date} to explain the {topic}.",
    "The agreement signed in {city} sets a deadline of {date} for the {topic}.",
    "According to {person}, the {topic} could create {count} jobs over {small} years.",
    "{org} said it had received {count} complaints about the {topic} since {month}.",
    "Critics, including the {role} {person}, called the {topic} rushed and poorly planned.",
    "The first phase of the {topic} began in {city} on {date} and is due to end in {year2}.",
    "Police detained {small} people during clashes near {city} on {day}, {org} said.",
    "{person} denied any wrongdoing and said the {topic} had followed every legal step.",
    "Talks between {org} and representatives from {city} ended on {day} without agreement.",
    "Inflation reached {percent} percent in {month}, the highest level since {year}.",
    "The {topic} was first proposed by {person} in {year}, when she was {role}.",
    "The {topic} was first proposed by {person} in {year}, when he was {role}.",
    "Residents of {city} said they learned about the {topic} only from local radio.",
    "{org} has asked for an extension until {date} to complete its review of the {topic}.",
    "Exports through the port of {city} fell by {percent} percent in the first half of {year}.",
    "The court in {city} gave {person} {small} days to respond to the charges.",
    "A delegation led by {person} will travel to {city} in {month} to discuss the {topic}.",
    "The vote on the {topic} is scheduled for {date}, two weeks later than planned.",
    "{person} said the government had set aside {money} million soles for the {topic}.",
)
REGIONS = (
    "Amazonas Áncash Apurímac Ayacucho Cajamarca Huánuco Ica Junín Lambayeque Loreto Moquegua "
    "Pasco Puno Tacna Tumbes Ucayali"
).split()
HEADLINES = (
    "{org_cap} reviews {topic} after protests in {city}",
    "{person} defends {topic} as critics question costs",
    "{city} residents wait for answers on {topic}",
    "Deadline for {topic} moved to {month}",
    "{org_cap} and {city} fail to agree on {topic}",
)


@dataclass(frozen=True)
class Fact:
    """One generated paragraph's main slots, for making a question it answers."""

    person: str
    topic: str
    city: str


@dataclass(frozen=True)
class Corpus:
    folder: Path
    files: int
    paragraphs: int
    words: int
    facts: tuple[Fact, ...]


SYLLABLES = (
    "ba be ca co da del fa ga gue hua ka la le lo ma mi na no pa pe qui ra re ri sa se ta te "
    "to tu va ve ya yu za zo an ar el en es in or ul"
).split()


def _surname(rng: random.Random) -> str:
    """Half the surnames are made up from syllables: a real corpus's vocabulary keeps growing
    with its size (mostly names), and the spelling corrector must cope with that."""
    if rng.random() < 0.5:
        return rng.choice(LAST)
    word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
    return word.capitalize()


def _person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {_surname(rng)}"


def _slots(rng: random.Random) -> dict[str, str]:
    year = rng.randint(1995, 2025)
    day = rng.randint(1, 28)
    month = rng.choice(MONTHS)
    votes = rng.randint(40, 120)
    return {
        "person": _person(rng),
        "role": rng.choice(ROLES),
        "org": rng.choice(ORGS),
        "topic": rng.choice(TOPICS),
        "city": rng.choice(CITIES),
        "region": rng.choice(REGIONS),
        "day": rng.choice(DAYS),
        "month": month,
        "date": f"{month} {day}, {year}",
        "year": str(year),
        "year2": str(year + rng.randint(1, 6)),
        "money": f"{rng.randint(2, 950)}.{rng.randint(0, 9)}",
        "count": f"{rng.randint(120, 98_000):,}",
        "small": str(rng.randint(2, 18)),
        "percent": f"{rng.randint(2, 60)}.{rng.randint(0, 9)}",
        "votes": str(votes),
        "votes2": str(rng.randint(5, votes - 1)),
    }


def _paragraph(rng: random.Random) -> tuple[str, Fact]:
    slots = _slots(rng)  # one cast per paragraph, so its sentences are about the same thing
    sentences = []
    named: str | None = None  # the first person the paragraph names
    for template in rng.sample(SENTENCES, rng.randint(2, 4)):
        s = template.format(**slots)
        sentences.append(s[0].upper() + s[1:])
        if named is None and "{person}" in template:
            named = slots["person"]
        # Later sentences may bring in a second person, as reporting does.
        slots["person"] = rng.choice((slots["person"], _person(rng)))
    fact = Fact(person=named or slots["person"], topic=slots["topic"], city=slots["city"])
    return " ".join(sentences), fact


def _headline(rng: random.Random) -> str:
    slots = _slots(rng)
    slots["org_cap"] = slots["org"][0].upper() + slots["org"][1:]
    return rng.choice(HEADLINES).format(**slots)


def write_corpus(folder: Path, n_paragraphs: int, seed: int = 7) -> Corpus:
    """About 20 paragraphs an article (12 to 28), ``n_paragraphs`` in all, same bytes per seed."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    facts: list[Fact] = []
    written = files = words = 0
    while written < n_paragraphs:
        count = min(rng.randint(12, 28), n_paragraphs - written)
        paragraphs: list[str] = []
        while len(paragraphs) < count:
            text, fact = _paragraph(rng)
            key = text.casefold()
            if key in seen:  # ingest keeps a repeated paragraph once; keep the count exact
                continue
            seen.add(key)
            paragraphs.append(text)
            facts.append(fact)
            words += len(text.split())
        files += 1
        name = folder / f"article_{files:06d}.txt"
        name.write_text(_headline(rng) + "\n\n" + "\n\n".join(paragraphs) + "\n", "utf-8")
        written += count
    return Corpus(folder, files, written, words, tuple(facts))


QUESTION_FORMS = (
    "What did {person} say about the {topic} in {city}?",
    "When will the {topic} in {city} be decided?",
    "How much will the {topic} cost according to {person}?",
    "Why did {person} criticise the {topic}?",
    "Who is responsible for the {topic} in {city}?",
)


def _misspell(rng: random.Random, question: str) -> str:
    """Swap two inner letters of one long word: users type like this, and it exercises the
    spelling corrector over the whole vocabulary."""
    words = question.split()
    long = [i for i, w in enumerate(words) if len(w) >= 7 and w.isalpha()]
    if not long:
        return question
    i = rng.choice(long)
    w = words[i]
    j = rng.randint(1, len(w) - 3)
    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    return " ".join(words)


def questions(facts: tuple[Fact, ...] | list[Fact], n: int, seed: int = 11) -> list[str]:
    """``n`` questions about generated paragraphs; one in five has a typo."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        fact = rng.choice(facts)
        q = rng.choice(QUESTION_FORMS).format(person=fact.person, topic=fact.topic, city=fact.city)
        out.append(_misspell(rng, q) if i % 5 == 4 else q)
    return out


SEED_QUESTIONS = (
    "Who announced that Peru was cutting diplomatic ties with Mexico?",
    "Where did Betssy Chávez go to request asylum?",
    "How many years in prison could Betssy Chávez get if prosecutors have their way?",
    "What criminal charge does Betssy Chávez face?",
    "How did Peru's foreign minister characterise Mexico's decision to shelter Chávez?",
    "Who is Betssy Chávez's lawyer?",
    "Which convention governs the asylum request?",
    "What prison sentence are prosecuters seeking for Betssy Chávez?",
)
