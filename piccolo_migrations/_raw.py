"""Helper for the raw-SQL migrations: one MigrationManager that runs a block of SQL in its transaction.

Piccolo runs raw callables before ``add_table`` inside one migration, so a migration here is either raw SQL
or a Piccolo snapshot, never both.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder


def raw_sql_migration(migration_id: str, description: str, sql: str) -> MigrationManager:
    manager = MigrationManager(migration_id=migration_id, app_name="vetbook", description=description)

    async def run_sql() -> None:
        engine = engine_finder()
        # asyncpg's execute() without arguments uses the simple protocol, which takes many statements;
        # Piccolo's run_ddl() uses fetch(), which takes one. Inside the migration's own transaction.
        transaction = engine.current_transaction.get()
        if transaction is not None:
            await transaction.connection.execute(sql)
            return
        connection = await engine.get_new_connection()
        try:
            async with connection.transaction():
                await connection.execute(sql)
        finally:
            await connection.close()

    manager.add_raw(run_sql)
    return manager
