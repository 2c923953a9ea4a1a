//! LDAP transactions (RFC 5805) for plain adds: slapd's mdb commits a
//! transaction's adds in one write, which roughly halves an add's cost.

use futures::StreamExt;
use ldap3::controls::RawControl;
use ldap3::exop::{EndTxn, StartTxn};
use ldap3::{LdapError, LdapResult};

use super::conn::{Pool, FENCED};
use super::ops::Step;
use super::rc::describe;

/// Why a group of adds in one transaction was not committed.
pub enum TxnFailure {
    /// The server does not do transactions: stop trying.
    Unsupported(String),
    /// The connection went away: some adds may have been committed.
    Lost(String),
    /// An add or the commit was refused: nothing was committed.
    Refused(String),
}

const TXN_REQUEST_OID: &str = "1.3.6.1.1.21.2";

impl Pool {
    /// Add entries in one LDAP transaction (RFC 5805): OpenLDAP's mdb then
    /// commits them in one write transaction, which roughly halves the cost
    /// of an add. All or nothing: on failure the caller adds them one by one.
    pub async fn add_in_txn(&self, i: usize, adds: &[&Step], in_flight: usize) -> Result<(), TxnFailure> {
        let timeout = self.op_timeout();
        if let Some(why) = self.gone() {
            return Err(TxnFailure::Lost(why));
        }
        let mut l = self.get(i).await.map_err(|e| TxnFailure::Lost(e.to_string()))?;
        let lost = |e: LdapError| TxnFailure::Lost(e.to_string());
        let start = l.with_timeout(timeout).extended(StartTxn).await.map_err(lost)?;
        if start.1.rc != 0 {
            return Err(TxnFailure::Unsupported(describe(&start.1)));
        }
        let id = start
            .0
            .val
            .and_then(|v| String::from_utf8(v).ok())
            .ok_or_else(|| TxnFailure::Unsupported("the server's transaction id is not text".into()))?;
        let control = RawControl {
            ctype: TXN_REQUEST_OID.to_string(),
            crit: true,
            val: Some(id.as_bytes().to_vec()),
        };
        let results: Vec<Result<LdapResult, LdapError>> = futures::stream::iter(0..adds.len())
            .map(|n| {
                let mut l = l.clone();
                let control = control.clone();
                let s = adds[n];
                async move {
                    let Step::Add { dn, attrs } = s else {
                        return Ok(LdapResult {
                            rc: 80,
                            matched: String::new(),
                            text: "not an add".into(),
                            refs: Vec::new(),
                            ctrls: Vec::new(),
                        });
                    };
                    // In the mapping's order, the same for every entry.
                    let a: Vec<(&[u8], Vec<&[u8]>)> = attrs
                        .iter()
                        .map(|(k, v)| (k.as_bytes(), v.iter().map(Vec::as_slice).collect()))
                        .collect();
                    l.with_controls(vec![control]).with_timeout(timeout).add(dn, a).await
                }
            })
            .buffer_unordered(in_flight.max(1))
            .collect()
            .await;
        let mut refused = None;
        for r in results {
            match r {
                Ok(r) if r.rc == 0 => {}
                Ok(r) => refused = Some(describe(&r)),
                Err(e) => {
                    self.drop_conn(i).await;
                    return Err(TxnFailure::Lost(e.to_string()));
                }
            }
        }
        // The last moment before the entries become visible.
        if !crate::backend::guard::may_write() {
            refused = Some(FENCED.to_string());
        }
        let commit = refused.is_none();
        let end = l
            .with_timeout(timeout)
            .extended(EndTxn { txn_id: &id, commit })
            .await
            .map_err(|e| TxnFailure::Lost(e.to_string()))?;
        match (refused, end.1.rc) {
            (Some(m), _) => Err(TxnFailure::Refused(m)),
            (None, 0) => Ok(()),
            (None, _) => Err(TxnFailure::Refused(describe(&end.1))),
        }
    }
}
