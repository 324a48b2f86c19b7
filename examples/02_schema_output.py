"""Schema output: the reply is parsed and validated against the spec's JSON Schema; a reply that
breaks it is retried (and with `output.repair: true`, re-asked with the validation errors)."""

from __future__ import annotations

from _common import PROMPTS, use_mock

import runner


def main() -> None:
    spec = runner.load(PROMPTS / "city.yaml")
    with runner.Session(mock=use_mock()) as session:
        result = session.run(spec, {"city": "Lisbon"})
    city = result.value  # a dict that satisfies schemas/city.json
    population = city["population"]  # the schema allows null: the model may not know
    print(f"{city['name']} ({city['country']}), population {population or 'unknown'}")
    for landmark in city["landmarks"]:
        print(f"  - {landmark}")

    try:
        with runner.Session(mock=use_mock()) as session:
            session.run(spec, {"city": ""})  # breaks the spec's `inputs` (minLength 1)
    except runner.InputsInvalid as exc:
        print(f"refused before any call: {exc}")


if __name__ == "__main__":
    main()
