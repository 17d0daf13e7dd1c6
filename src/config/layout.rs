//! The `layout` setting: which tool's folder and history table the migrations are (each one
//! implemented by `migrate::format`).

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// Drizzle 0.x: `meta/_journal.json` and `<tag>.sql`.
    Drizzle,
    /// Drizzle 1.0: `<YYYYMMDDHHMMSS>_<name>/migration.sql`, no journal.
    DrizzleV1,
    /// Prisma Migrate: `<timestamp>_<name>/migration.sql` and `migration_lock.toml`.
    Prisma,
    /// golang-migrate: `<version>_<name>.up.sql`, one high-water-mark row.
    GolangMigrate,
    /// dbmate: `<digits>_<name>.sql` with `-- migrate:up` / `-- migrate:down` sections.
    Dbmate,
    /// sqlx: `<version>_<description>.sql` (or `.up.sql`), named by the `layout` setting.
    Sqlx,
    /// Flyway: `V<version>__<description>.sql` and `R__<description>.sql` repeatables.
    Flyway,
    /// goose: `<version>_<name>.sql` with `-- +goose Up` / `-- +goose Down` sections.
    Goose,
    Numbered,
}

/// `auto` (detected: `None`) or a layout's name, as the JSON documents spell it.
pub fn parse(s: &str) -> Result<Option<Layout>, String> {
    match s {
                    "auto" => Ok(None),
                    "drizzle" => Ok(Some(Layout::Drizzle)),
                    "drizzle-v1" => Ok(Some(Layout::DrizzleV1)),
                    "prisma" => Ok(Some(Layout::Prisma)),
                    "golang-migrate" => Ok(Some(Layout::GolangMigrate)),
                    "dbmate" => Ok(Some(Layout::Dbmate)),
                    "sqlx" => Ok(Some(Layout::Sqlx)),
                    "flyway" => Ok(Some(Layout::Flyway)),
                    "goose" => Ok(Some(Layout::Goose)),
                    "numbered" => Ok(Some(Layout::Numbered)),
                    _ => Err(
                        "expected auto, drizzle, drizzle-v1, prisma, golang-migrate, dbmate, sqlx, flyway, goose or numbered"
                            .into(),
                    ),
    }
}
