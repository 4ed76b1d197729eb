//! Photos and recordings on a ticket: checked by content, stored through
//! `object_store`, served only to those who may see the ticket.

use chrono::{DateTime, Utc};
use jiesu_auth::{Principal, Role};
use jiesu_common::tr;
use jiesu_proto::{
    intake::{Attachment, AttachmentData, GetAttachmentRequest, UploadAttachmentRequest},
    time::to_timestamp,
};
use object_store::{PutPayload, path::Path};
use sea_orm::{ActiveModelTrait, ConnectionTrait, QueryResult, Set};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Core, IntakeError, TICKET_READERS};
use crate::{
    domain::{self, bad, credentials::hex, media, parse_id},
    store::{self, stmt, ticket_events},
};

const UPLOADERS: &[Role] = &[Role::Citizen, Role::Agent, Role::GridWorker];

fn message(r: &QueryResult) -> Result<(Attachment, String), sea_orm::DbErr> {
    let created: DateTime<Utc> = r.try_get("", "created_at")?;
    Ok((
        Attachment {
            id: r.try_get::<Uuid>("", "id")?.to_string(),
            kind: r.try_get("", "kind")?,
            content_type: r.try_get("", "content_type")?,
            size_bytes: r.try_get("", "size_bytes")?,
            sha256: r.try_get("", "sha256")?,
            created_at: Some(to_timestamp(created)),
        },
        r.try_get("", "object_key")?,
    ))
}

impl Core {
    /// The ticket's attachments, oldest first.
    pub async fn attachments_of<C: ConnectionTrait>(
        &self,
        conn: &C,
        ticket: Uuid,
    ) -> Result<Vec<Attachment>, IntakeError> {
        let rows = conn
            .query_all_raw(stmt(
                "SELECT * FROM ticket_attachments WHERE ticket_id = $1 ORDER BY created_at, id",
                vec![ticket.into()],
            ))
            .await?;
        Ok(rows
            .iter()
            .map(|r| message(r).map(|(a, _)| a))
            .collect::<Result<_, _>>()?)
    }

    pub async fn upload_attachment(
        &self,
        who: &Principal,
        req: &UploadAttachmentRequest,
    ) -> Result<Attachment, IntakeError> {
        who.require_any(UPLOADERS)?;
        let id = parse_id("ticket_id", &req.ticket_id, &tr!("诉求", "a ticket"))?;
        let t = store::find_visible_ticket(&self.db, who, id)
            .await?
            .ok_or_else(|| IntakeError::NotFound(tr!("诉求", "ticket")))?;
        if domain::is_closed(&t.status) {
            return Err(IntakeError::Closed(t.status));
        }
        if req.data.is_empty() {
            return Err(bad("data", tr!("为空", "is empty")).into());
        }
        let (kind, content_type) = media::sniff(&req.data).ok_or_else(|| {
            bad(
                "data",
                tr!(
                    "必须是图片（JPEG、PNG、GIF、WebP、HEIC）或录音（MP3、M4A、AMR、WAV、Ogg）",
                    "must be an image (JPEG, PNG, GIF, WebP, HEIC) or a recording (MP3, M4A, AMR, WAV, Ogg)"
                ),
            )
        })?;
        let limit = match kind {
            media::Kind::Image => self.attachments.max_image_bytes,
            media::Kind::Audio => self.attachments.max_audio_bytes,
        };
        if req.data.len() > limit {
            return Err(bad("data", {
                let (zh, en) = match kind {
                    media::Kind::Image => ("图片", "image"),
                    media::Kind::Audio => ("录音", "audio"),
                };
                tr!(
                    "{zh}最多 {limit} 字节",
                    "a {en} may be at most {limit} bytes"
                )
            })
            .into());
        }
        let sha = hex(&Sha256::digest(&req.data));
        // The same file twice is one attachment.
        if let Some(r) = self
            .db
            .query_one_raw(stmt(
                "SELECT * FROM ticket_attachments WHERE ticket_id = $1 AND sha256 = $2",
                vec![id.into(), sha.clone().into()],
            ))
            .await?
        {
            return Ok(message(&r)?.0);
        }
        let existing = self.attachments_of(&self.db, id).await?.len();
        if existing >= self.attachments.max_per_ticket as usize {
            return Err(bad(
                "data",
                tr!(
                    "每件诉求最多 {} 个附件",
                    "a ticket holds at most {} attachments",
                    self.attachments.max_per_ticket
                ),
            )
            .into());
        }
        let att_id = Uuid::now_v7();
        let key = format!("{}/{}/{}", t.tenant, id, att_id);
        // Bytes first: a row never points at nothing. A crash between the
        // two leaves an unreferenced object, harmless and sweepable.
        self.objects
            .put(&Path::from(key.clone()), PutPayload::from(req.data.clone()))
            .await?;
        let now = Utc::now();
        let row = self
            .db
            .query_one_raw(stmt(
                "INSERT INTO ticket_attachments (id, ticket_id, tenant, kind, content_type, size_bytes, \
                 sha256, object_key, uploaded_by, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) \
                 ON CONFLICT (ticket_id, sha256) DO NOTHING RETURNING *",
                vec![
                    att_id.into(),
                    id.into(),
                    t.tenant.clone().into(),
                    kind.as_str().into(),
                    content_type.into(),
                    (req.data.len() as i64).into(),
                    sha.clone().into(),
                    key.clone().into(),
                    who.sub.clone().into(),
                    now.into(),
                ],
            ))
            .await?;
        let Some(row) = row else {
            // A concurrent upload of the same file won.
            let _ = self.objects.delete(&Path::from(key)).await;
            let r = self
                .db
                .query_one_raw(stmt(
                    "SELECT * FROM ticket_attachments WHERE ticket_id = $1 AND sha256 = $2",
                    vec![id.into(), sha.into()],
                ))
                .await?
                .ok_or_else(|| IntakeError::NotFound(tr!("附件", "attachment")))?;
            return Ok(message(&r)?.0);
        };
        ticket_events::ActiveModel {
            ticket_id: Set(id),
            tenant: Set(t.tenant.clone()),
            at: Set(now),
            event: Set("attachment_added".into()),
            actor_role: Set(if who.has_role(Role::Agent) {
                "agent"
            } else if who.has_role(Role::GridWorker) {
                "grid_worker"
            } else {
                "citizen"
            }
            .into()),
            note: Set(match kind {
                media::Kind::Image => "上传了图片".into(),
                media::Kind::Audio => "上传了录音".into(),
            }),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        tracing::info!(ticket_id = %id, kind = kind.as_str(), bytes = req.data.len(), "attachment stored");
        Ok(message(&row)?.0)
    }

    pub async fn get_attachment(
        &self,
        who: &Principal,
        req: &GetAttachmentRequest,
    ) -> Result<AttachmentData, IntakeError> {
        who.require_any(TICKET_READERS)?;
        let id = parse_id("ticket_id", &req.ticket_id, &tr!("诉求", "a ticket"))?;
        let att = parse_id(
            "attachment_id",
            &req.attachment_id,
            &tr!("附件", "an attachment"),
        )?;
        store::find_visible_ticket(&self.db, who, id)
            .await?
            .ok_or_else(|| IntakeError::NotFound(tr!("诉求", "ticket")))?;
        let row = self
            .db
            .query_one_raw(stmt(
                "SELECT * FROM ticket_attachments WHERE id = $1 AND ticket_id = $2",
                vec![att.into(), id.into()],
            ))
            .await?
            .ok_or_else(|| IntakeError::NotFound(tr!("附件", "attachment")))?;
        let (attachment, key) = message(&row)?;
        let data = self.objects.get(&Path::from(key)).await?.bytes().await?;
        Ok(AttachmentData {
            attachment: Some(attachment),
            data: data.to_vec(),
        })
    }
}
