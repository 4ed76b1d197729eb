//! Re-encrypting intake's personal data with the keyring's active key, so an
//! old key can be removed: rotation without downtime.
//!
//! 1. Add the new key to the keyring and make it `active`, keeping the old
//!    one; roll the pods (they read both, write the new one).
//! 2. Run `jiesu rekey --target intake` (safe to repeat and to run while
//!    serving): each batch locks its rows with `FOR UPDATE SKIP LOCKED`,
//!    re-seals them and commits.
//! 3. When it reports nothing left under the old key, remove the old key.

use jiesu_db::rekey::Column;

/// Intake's sealed columns.
pub const COLUMNS: &[Column] = &[
    Column {
        table: "tickets",
        id: "id",
        column: "content_enc",
        aad: "tickets.content:{id}",
    },
    Column {
        table: "tickets",
        id: "id",
        column: "address_enc",
        aad: "tickets.address:{id}",
    },
    Column {
        table: "tickets",
        id: "id",
        column: "citizen_name_enc",
        aad: "tickets.citizen_name:{id}",
    },
    Column {
        table: "tickets",
        id: "id",
        column: "citizen_phone_enc",
        aad: "tickets.citizen_phone:{id}",
    },
    Column {
        table: "tickets",
        id: "id",
        column: "id_number_enc",
        aad: "tickets.id_number:{id}",
    },
    Column {
        table: "tickets",
        id: "id",
        column: "client_meta_enc",
        aad: "tickets.client_meta:{id}",
    },
    Column {
        table: "ticket_supplements",
        id: "ticket_id",
        column: "text_enc",
        aad: "ticket_supplements.text:{id}",
    },
    Column {
        table: "channel_credentials",
        id: "id",
        column: "secret_enc",
        aad: "channel_credentials.secret:{id}",
    },
];
