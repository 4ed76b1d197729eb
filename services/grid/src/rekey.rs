//! Grid's sealed columns, for `jiesu rekey --target grid` (see
//! `jiesu_db::rekey`): workers' phones, households and key persons.

use jiesu_db::rekey::Column;

const fn col(table: &'static str, column: &'static str, aad: &'static str) -> Column {
    Column {
        table,
        id: "id",
        column,
        aad,
    }
}

/// Every sealed column of grid, with the associated data `store::aad`
/// binds it to.
pub const COLUMNS: &[Column] = &[
    col("workers", "phone_enc", "grid.workers.phone:{tenant}:{id}"),
    col(
        "households",
        "room_enc",
        "grid.households.room:{tenant}:{id}",
    ),
    col(
        "households",
        "head_name_enc",
        "grid.households.head_name:{tenant}:{id}",
    ),
    col(
        "households",
        "phone_enc",
        "grid.households.phone:{tenant}:{id}",
    ),
    col(
        "households",
        "residents_enc",
        "grid.households.residents:{tenant}:{id}",
    ),
    col(
        "key_persons",
        "name_enc",
        "grid.key_persons.name:{tenant}:{id}",
    ),
    col(
        "key_persons",
        "id_number_enc",
        "grid.key_persons.id_number:{tenant}:{id}",
    ),
    col(
        "key_persons",
        "phone_enc",
        "grid.key_persons.phone:{tenant}:{id}",
    ),
    col(
        "key_persons",
        "address_enc",
        "grid.key_persons.address:{tenant}:{id}",
    ),
    col(
        "key_persons",
        "note_enc",
        "grid.key_persons.note:{tenant}:{id}",
    ),
];
