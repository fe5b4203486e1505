use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Float8, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use eagate_domain::UnexpectedError;
use eagate_domain::account::UserId;
use eagate_domain::device::DeviceId;
use eagate_domain::pagination::{Page, PageRequest};
use eagate_domain::signal::{
    Ack, AckRecord, Delivery, InsertSignalError, Instrument, NewSignal, Signal, SignalId, SignalRepository,
    SignalWithDeliveries,
};
use tracing::instrument;
use uuid::Uuid;

use super::conn;
use crate::error::DbError;
use crate::listener::{DELIVERIES_CHANNEL, notification_payloads};
use crate::pool::PgPool;
use crate::rows::{DeliveryRow, NewDeliveryColumns, NewSignalRow, SignalRow};
use crate::schema::{devices, signal_deliveries, signals};

const IDEMPOTENCY_INDEX: &str = "signals_owner_idempotency_key";

/// [`SignalRepository`] on PostgreSQL. Publishing notifies
/// [`crate::PgSignalWakeups`] listeners on every instance through
/// `NOTIFY`, sent inside the publishing transaction (so only on commit).
#[derive(Clone)]
pub struct PgSignalRepository {
    pool: PgPool,
}

impl std::fmt::Debug for PgSignalRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSignalRepository").finish_non_exhaustive()
    }
}

impl PgSignalRepository {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// Loads the deliveries of `rows` and pairs them up, keeping row order.
async fn with_deliveries(
    conn: &mut AsyncPgConnection,
    rows: Vec<SignalRow>,
) -> Result<Vec<SignalWithDeliveries>, UnexpectedError> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let deliveries: Vec<DeliveryRow> = signal_deliveries::table
        .filter(signal_deliveries::signal_id.eq_any(&ids))
        .select(DeliveryRow::as_select())
        .order((signal_deliveries::signal_id, signal_deliveries::device_id))
        .load(conn)
        .await
        .map_err(DbError::from)?;
    let mut by_signal: HashMap<Uuid, Vec<Delivery>> = HashMap::new();
    for d in deliveries {
        by_signal
            .entry(d.signal_id)
            .or_default()
            .push(Delivery::try_from(d)?);
    }
    rows.into_iter()
        .map(|r| {
            let deliveries = by_signal.remove(&r.id).unwrap_or_default();
            Ok(SignalWithDeliveries {
                signal: Signal::try_from(r)?,
                deliveries,
            })
        })
        .collect()
}

async fn load_one(
    conn: &mut AsyncPgConnection,
    owner: Uuid,
    id: Uuid,
) -> Result<Option<SignalWithDeliveries>, UnexpectedError> {
    let row = signals::table
        .filter(signals::id.eq(id).and(signals::owner_id.eq(owner)))
        .select(SignalRow::as_select())
        .first(conn)
        .await
        .optional()
        .map_err(DbError::from)?;
    match row {
        Some(row) => Ok(with_deliveries(conn, vec![row]).await?.pop()),
        None => Ok(None),
    }
}

impl SignalRepository for PgSignalRepository {
    #[instrument(name = "db.signals.insert", skip_all, err(Display))]
    async fn insert(&self, new: &NewSignal) -> Result<SignalWithDeliveries, InsertSignalError> {
        let mut conn = conn(&self.pool).await.map_err(UnexpectedError::from)?;
        let row = NewSignalRow::new(&new.signal, new.idempotency.as_ref());
        let deliveries = NewDeliveryColumns::new(&new.deliveries);
        // Devices that receive the same order share notifications; skipped
        // ones are not woken. Alike devices usually come one after another:
        // the previous device's group is reused without adapting again.
        let mut groups: Vec<(Signal, Vec<DeviceId>)> = Vec::new();
        let mut previous: Option<(&eagate_domain::config::Adaptation, Option<usize>)> = None;
        for (device, adaptation) in &new.deliveries {
            let group = match previous {
                Some((last, group)) if last == adaptation => group,
                _ => adaptation.apply(&new.signal.order).map(|order| {
                    groups
                        .iter()
                        .position(|(s, _)| s.order == order)
                        .unwrap_or_else(|| {
                            groups.push((
                                Signal {
                                    order,
                                    ..new.signal.clone()
                                },
                                Vec::new(),
                            ));
                            groups.len() - 1
                        })
                }),
            };
            previous = Some((adaptation, group));
            if let Some(group) = group {
                groups[group].1.push(*device);
            }
        }
        let payloads: Vec<String> = groups
            .iter()
            .flat_map(|(signal, devices)| notification_payloads(signal, devices))
            .collect();
        let result = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                diesel::insert_into(signals::table)
                    .values(&row)
                    .execute(conn)
                    .await?;
                diesel::sql_query(
                    "INSERT INTO signal_deliveries \
                     (signal_id, device_id, created_at, expires_at, instrument, volume, skip_reason, adaptation) \
                     SELECT $1, d.device_id, $2, $3, d.instrument, d.volume, d.skip_reason, ($9::jsonb[])[d.adaptation] \
                     FROM unnest($4::uuid[], $5::text[], $6::float8[], $7::text[], $8::int4[]) \
                     AS d(device_id, instrument, volume, skip_reason, adaptation)",
                )
                .bind::<SqlUuid, _>(new.signal.id.as_uuid())
                .bind::<Timestamptz, _>(new.signal.created_at)
                .bind::<Nullable<Timestamptz>, _>(new.signal.expires_at)
                .bind::<Array<SqlUuid>, _>(&deliveries.device_ids)
                .bind::<Array<Nullable<Text>>, _>(&deliveries.instruments)
                .bind::<Array<Nullable<Float8>>, _>(&deliveries.volumes)
                .bind::<Array<Nullable<Text>>, _>(&deliveries.skip_reasons)
                .bind::<Array<Integer>, _>(&deliveries.adaptation_numbers)
                .bind::<Array<Jsonb>, _>(&deliveries.adaptations)
                .execute(conn)
                .await?;
                // Every chunk of targets in one round trip.
                diesel::sql_query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
                    .bind::<Text, _>(DELIVERIES_CHANNEL)
                    .bind::<Array<Text>, _>(&payloads)
                    .execute(conn)
                    .await?;
                Ok(())
            })
            .await
            .map_err(DbError::from);
        match result {
            Ok(()) => Ok(SignalWithDeliveries {
                signal: new.signal.clone(),
                deliveries: new
                    .deliveries
                    .iter()
                    .map(|(d, adaptation)| Delivery {
                        signal_id: new.signal.id,
                        device_id: *d,
                        first_polled_at: None,
                        ack: None,
                        cancelled_at: None,
                        adaptation: Some(adaptation.clone()),
                    })
                    .collect(),
            }),
            Err(e) if e.unique_violation() == Some(IDEMPOTENCY_INDEX) => Err(InsertSignalError::DuplicateKey),
            Err(e) => Err(InsertSignalError::Unexpected(e.into())),
        }
    }

    #[instrument(name = "db.signals.find_by_idempotency_key", skip_all, err(Display))]
    async fn find_by_idempotency_key(
        &self,
        owner: UserId,
        key: &str,
    ) -> Result<Option<(SignalWithDeliveries, String)>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let found: Option<(SignalRow, Option<String>)> = signals::table
            .filter(
                signals::owner_id
                    .eq(owner.as_uuid())
                    .and(signals::idempotency_key.eq(key)),
            )
            .select((SignalRow::as_select(), signals::request_description))
            .first(&mut conn)
            .await
            .optional()
            .map_err(DbError::from)?;
        let Some((row, description)) = found else {
            return Ok(None);
        };
        let signal = with_deliveries(&mut conn, vec![row]).await?.pop();
        Ok(signal.map(|s| (s, description.unwrap_or_default())))
    }

    #[instrument(name = "db.signals.find", skip_all, err(Display))]
    async fn find(
        &self,
        owner: UserId,
        id: SignalId,
    ) -> Result<Option<SignalWithDeliveries>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        load_one(&mut conn, owner.as_uuid(), id.as_uuid()).await
    }

    #[instrument(name = "db.signals.list", skip_all, err(Display))]
    async fn list(
        &self,
        owner: UserId,
        page: &PageRequest,
    ) -> Result<Page<SignalWithDeliveries>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let mut query = signals::table
            .filter(signals::owner_id.eq(owner.as_uuid()))
            .select(SignalRow::as_select())
            .order((signals::created_at.desc(), signals::id.desc()))
            .limit(i64::from(page.limit) + 1)
            .into_boxed();
        if let Some(after) = page.after {
            query = query.filter(
                signals::created_at
                    .lt(after.at)
                    .or(signals::created_at.eq(after.at).and(signals::id.lt(after.id))),
            );
        }
        let rows = query.load(&mut conn).await.map_err(DbError::from)?;
        let items = with_deliveries(&mut conn, rows).await?;
        Ok(Page::from_overfetch(items, page.limit, |s| s.signal.cursor()))
    }

    #[instrument(name = "db.signals.cancel", skip_all, err(Display))]
    async fn cancel(
        &self,
        owner: UserId,
        id: SignalId,
        at: DateTime<Utc>,
    ) -> Result<Option<SignalWithDeliveries>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let (owner, id) = (owner.as_uuid(), id.as_uuid());
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            let n = diesel::update(signals::table)
                .filter(signals::id.eq(id).and(signals::owner_id.eq(owner)))
                .filter(signals::cancelled_at.is_null())
                .set(signals::cancelled_at.eq(at))
                .execute(conn)
                .await?;
            if n == 1 {
                diesel::update(signal_deliveries::table)
                    .filter(signal_deliveries::signal_id.eq(id))
                    .filter(signal_deliveries::acknowledged_at.is_null())
                    .filter(signal_deliveries::cancelled_at.is_null())
                    .set(signal_deliveries::cancelled_at.eq(at))
                    .execute(conn)
                    .await?;
            }
            Ok(())
        })
        .await
        .map_err(DbError::from)?;
        load_one(&mut conn, owner, id).await
    }

    #[instrument(name = "db.signals.active_devices", skip_all, err(Display))]
    async fn active_devices(&self, owner: UserId) -> Result<Vec<DeviceId>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let ids: Vec<Uuid> = devices::table
            .filter(
                devices::owner_id
                    .eq(owner.as_uuid())
                    .and(devices::revoked_at.is_null()),
            )
            .select(devices::id)
            .order(devices::id)
            .load(&mut conn)
            .await
            .map_err(DbError::from)?;
        Ok(ids.into_iter().map(DeviceId::from_uuid).collect())
    }

    #[instrument(name = "db.signals.pending", skip_all, err(Display))]
    async fn pending_for_device(
        &self,
        device: DeviceId,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Signal>, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let rows: Vec<(SignalRow, Option<String>, Option<f64>)> = signal_deliveries::table
            .inner_join(signals::table.on(signals::id.eq(signal_deliveries::signal_id)))
            .filter(signal_deliveries::device_id.eq(device.as_uuid()))
            .filter(signal_deliveries::acknowledged_at.is_null())
            .filter(signal_deliveries::cancelled_at.is_null())
            .filter(signal_deliveries::skip_reason.is_null())
            .filter(
                signal_deliveries::expires_at
                    .is_null()
                    .or(signal_deliveries::expires_at.gt(now)),
            )
            .order((signal_deliveries::created_at, signal_deliveries::signal_id))
            .limit(i64::from(limit))
            .select((
                SignalRow::as_select(),
                signal_deliveries::instrument,
                signal_deliveries::volume,
            ))
            .load(&mut conn)
            .await
            .map_err(DbError::from)?;
        // The order as adapted for the device (deliveries stored before
        // configurations existed have neither column: as published).
        rows.into_iter()
            .map(|(row, instrument, volume)| {
                let mut signal = Signal::try_from(row)?;
                if let Some(instrument) = instrument {
                    signal.order.instrument = Instrument::from_trusted(instrument);
                }
                if let Some(volume) = volume {
                    signal.order.volume = volume;
                }
                Ok(signal)
            })
            .collect()
    }

    #[instrument(name = "db.signals.mark_delivered", skip_all, err(Display))]
    async fn mark_delivered(
        &self,
        deliveries: &[(DeviceId, SignalId, DateTime<Utc>)],
    ) -> Result<(), UnexpectedError> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let mut conn = conn(&self.pool).await?;
        diesel::sql_query(
            "UPDATE signal_deliveries AS d SET first_polled_at = v.at \
             FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[]) AS v(device_id, signal_id, at) \
             WHERE d.device_id = v.device_id AND d.signal_id = v.signal_id AND d.first_polled_at IS NULL",
        )
        .bind::<Array<SqlUuid>, _>(deliveries.iter().map(|(d, _, _)| d.as_uuid()).collect::<Vec<_>>())
        .bind::<Array<SqlUuid>, _>(deliveries.iter().map(|(_, s, _)| s.as_uuid()).collect::<Vec<_>>())
        .bind::<Array<Timestamptz>, _>(deliveries.iter().map(|(_, _, at)| *at).collect::<Vec<_>>())
        .execute(&mut conn)
        .await
        .map_err(DbError::from)?;
        Ok(())
    }

    #[instrument(name = "db.signals.acknowledge", skip_all, err(Display))]
    async fn acknowledge(
        &self,
        device: DeviceId,
        signal: SignalId,
        ack: &Ack,
    ) -> Result<AckRecord, UnexpectedError> {
        let mut conn = conn(&self.pool).await?;
        let (device, signal) = (device.as_uuid(), signal.as_uuid());
        let target = signal_deliveries::table
            .filter(signal_deliveries::signal_id.eq(signal))
            .filter(signal_deliveries::device_id.eq(device));
        let recorded = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                let n = diesel::update(target)
                    .filter(signal_deliveries::acknowledged_at.is_null())
                    .set((
                        signal_deliveries::acknowledged_at.eq(ack.at),
                        signal_deliveries::outcome.eq(ack.outcome.as_str()),
                        signal_deliveries::ticket.eq(ack.ticket),
                        signal_deliveries::fill_price.eq(ack.fill_price),
                        signal_deliveries::message.eq(ack.message.as_deref()),
                    ))
                    .execute(conn)
                    .await?;
                if n == 1 {
                    diesel::update(devices::table.find(device))
                        .set(devices::last_ack_at.eq(ack.at))
                        .execute(conn)
                        .await?;
                }
                Ok(n == 1)
            })
            .await
            .map_err(DbError::from)?;
        if recorded {
            return Ok(AckRecord::Recorded(ack.clone()));
        }
        let existing: Option<DeliveryRow> = target
            .select(DeliveryRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(DbError::from)?;
        match existing {
            None => Ok(AckRecord::NotFound),
            Some(row) => match row.ack()? {
                Some(first) => Ok(AckRecord::Existing(first)),
                None => Err(UnexpectedError::msg("acknowledgement neither stored nor present")),
            },
        }
    }
}
