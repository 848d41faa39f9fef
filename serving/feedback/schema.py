"""The feedback schema as numbered migrations, the same for SQLite and Postgres.

Migration N brings the schema from version N-1 to N; ``schema_version`` holds the number
reached. At start the store applies every migration above that number, each in its own
transaction together with the version bump, so a crash never leaves half a migration.
A framework (Alembic) would bring autogeneration and downgrade scripts this one table does
not need; numbered SQL keeps the whole history readable in this file (docs/design.md).

The two dialects differ only in the words substituted for ``{id}`` and ``{blob}``.
"""

from __future__ import annotations

DIALECT_WORDS = {
    "sqlite": {"id": "INTEGER PRIMARY KEY AUTOINCREMENT", "blob": "BLOB"},
    "postgresql": {"id": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "blob": "BYTEA"},
}

# Nothing here identifies a person: no address, no user agent, no account; the image is the
# prepared 28x28 model input (the original upload only with --feedback-keep-uploads).
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE feedback (
            id {id},
            answer_key TEXT UNIQUE,
            created_at DOUBLE PRECISION NOT NULL,
            model TEXT NOT NULL,
            version TEXT NOT NULL,
            predicted TEXT NOT NULL,
            label TEXT NOT NULL,
            verdict TEXT NOT NULL CHECK (verdict IN ('correct', 'corrected')),
            probabilities {blob} NOT NULL,
            image {blob} NOT NULL,
            upload {blob}
        )""",
        "CREATE INDEX feedback_model_version ON feedback (model, version)",
        "CREATE INDEX feedback_created_at ON feedback (created_at)",
    ),
    # The shadow candidate's label for the same image (serving/shadow/), NULL when none ran.
    2: (
        "ALTER TABLE feedback ADD COLUMN candidate_version TEXT",
        "ALTER TABLE feedback ADD COLUMN candidate_label TEXT",
    ),
}
SCHEMA_VERSION = max(MIGRATIONS)


def statements(version: int, dialect: str) -> list[str]:
    """Migration ``version``'s SQL for ``dialect`` ("sqlite" or "postgresql")."""
    words = DIALECT_WORDS[dialect]
    return [sql.format(**words) for sql in MIGRATIONS[version]]
