//! A device over real MQTT (rumqttc against mosquitto), speaking the AWS IoT
//! Jobs device protocol: used by the end-to-end tests, the device simulator
//! and the benchmark. Does I/O (the broker).

use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// One received message: topic, payload (JSON, or the raw text as a string),
/// and when it arrived.
pub type Received = (String, Value, Instant);

#[derive(Debug)]
pub struct MqttDevice {
    pub thing: String,
    /// The thing's topic root, e.g. `courier/things/dev-1/jobs`.
    pub root: String,
    client: AsyncClient,
    inbox: mpsc::UnboundedReceiver<Received>,
    backlog: Vec<Received>,
    task: tokio::task::JoinHandle<()>,
}

/// `host:port` of a broker.
/// A client and its event loop with TCP_NODELAY: without it a small packet
/// written while the previous one is unacknowledged waits for the peer's
/// delayed ACK (40 ms on Linux), which is what the latency benchmark saw.
pub fn new_client(options: MqttOptions, capacity: usize) -> (AsyncClient, rumqttc::EventLoop) {
    let (client, mut eventloop) = AsyncClient::new(options, capacity);
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);
    (client, eventloop)
}

pub fn parse_broker(broker: &str) -> (String, u16) {
    match broker.rsplit_once(':') {
        Some((host, port)) => (host.to_owned(), port.parse().unwrap_or(1883)),
        None => (broker.to_owned(), 1883),
    }
}

impl MqttDevice {
    /// Connects as `thing` (also the MQTT client id) and subscribes to every
    /// topic under its root (`root_template` has `{thingName}`).
    pub async fn connect(broker: &str, thing: &str, root_template: &str) -> Result<Self, String> {
        Self::connect_with(broker, thing, root_template, false, &["#"]).await
    }

    /// [`Self::connect`], subscribed only to `suffixes` under the root, as
    /// a device built on an AWS IoT Device SDK subscribes (the cost
    /// benchmark counts the deliveries a real device would receive).
    pub async fn connect_subscribed(
        broker: &str,
        thing: &str,
        root_template: &str,
        suffixes: &[&str],
    ) -> Result<Self, String> {
        Self::connect_with(broker, thing, root_template, false, suffixes).await
    }

    /// [`Self::connect`], announcing the connection as AWS IoT does: a
    /// lifecycle event on `$aws/events/presence/connected/{thing}` once
    /// connected, and `.../disconnected/{thing}` as the MQTT will, which the
    /// broker publishes when the connection drops. (Mosquitto publishes no
    /// lifecycle events of its own; the timestamp is left to the receiver.)
    pub async fn connect_announced(
        broker: &str,
        thing: &str,
        root_template: &str,
    ) -> Result<Self, String> {
        let device = Self::connect_with(broker, thing, root_template, true, &["#"]).await?;
        device
            .client
            .publish(
                format!("$aws/events/presence/connected/{thing}"),
                QoS::AtLeastOnce,
                false,
                json!({"clientId": thing, "eventType": "connected"}).to_string(),
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(device)
    }

    async fn connect_with(
        broker: &str,
        thing: &str,
        root_template: &str,
        announced: bool,
        suffixes: &[&str],
    ) -> Result<Self, String> {
        let (host, port) = parse_broker(broker);
        let mut options = MqttOptions::new(thing, host, port);
        if announced {
            options.set_last_will(LastWill::new(
                format!("$aws/events/presence/disconnected/{thing}"),
                json!({"clientId": thing, "eventType": "disconnected",
                       "disconnectReason": "CONNECTION_LOST"})
                .to_string(),
                QoS::AtLeastOnce,
                false,
            ));
        }
        options.set_keep_alive(Duration::from_secs(30));
        options.set_max_packet_size(256 * 1024, 256 * 1024);
        let (client, mut eventloop) = new_client(options, 64);
        let (tx, inbox) = mpsc::unbounded_channel();
        let (ready_tx, mut ready) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let payload = serde_json::from_slice(&p.payload).unwrap_or_else(|_| {
                            Value::String(String::from_utf8_lossy(&p.payload).into_owned())
                        });
                        if tx.send((p.topic.clone(), payload, Instant::now())).is_err() {
                            return;
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = ready_tx.send(());
                    }
                    Ok(_) => {}
                    Err(_) => {
                        if tx.is_closed() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        });
        let root = root_template.replace("{thingName}", thing);
        let filters = suffixes.iter().map(|suffix| {
            rumqttc::SubscribeFilter::new(format!("{root}/{suffix}"), QoS::AtLeastOnce)
        });
        client
            .subscribe_many(filters)
            .await
            .map_err(|e| e.to_string())?;
        tokio::time::timeout(Duration::from_secs(10), ready.recv())
            .await
            .map_err(|_| format!("no SUBACK from {broker} within 10 s"))?;
        Ok(Self {
            thing: thing.to_owned(),
            root,
            client,
            inbox,
            backlog: Vec::new(),
            task,
        })
    }

    /// Publishes `payload` on `{root}/{suffix}` (QoS 1).
    pub async fn publish(&self, suffix: &str, payload: &Value) -> Result<(), String> {
        self.client
            .publish(
                format!("{}/{suffix}", self.root),
                QoS::AtLeastOnce,
                false,
                payload.to_string(),
            )
            .await
            .map_err(|e| e.to_string())
    }

    /// Publishes raw bytes (for malformed-payload tests).
    pub async fn publish_raw(&self, suffix: &str, payload: &[u8]) -> Result<(), String> {
        self.client
            .publish(
                format!("{}/{suffix}", self.root),
                QoS::AtLeastOnce,
                false,
                payload.to_vec(),
            )
            .await
            .map_err(|e| e.to_string())
    }

    /// A request and its reply: `Ok(accepted)` or `Err(rejected)`, matched by
    /// a fresh clientToken. Panics-free: a missing reply is an `Err` too.
    pub async fn request(&mut self, suffix: &str, mut payload: Value) -> Result<Value, Value> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let token = format!("{}-{}", self.thing, NEXT.fetch_add(1, Ordering::Relaxed));
        if payload.is_null() {
            payload = json!({});
        }
        payload["clientToken"] = json!(token);
        if let Err(e) = self.publish(suffix, &payload).await {
            return Err(json!({ "code": "PublishFailed", "message": e }));
        }
        let accepted = format!("{}/{suffix}/accepted", self.root);
        let rejected = format!("{}/{suffix}/rejected", self.root);
        let reply = self
            .wait_for(Duration::from_secs(15), |(topic, body, _)| {
                (*topic == accepted || *topic == rejected) && body["clientToken"] == json!(token)
            })
            .await;
        match reply {
            Some((topic, body, _)) if topic == accepted => Ok(body),
            Some((_, body, _)) => Err(body),
            None => Err(
                json!({ "code": "NoReply", "message": format!("no reply on {suffix} within 15 s") }),
            ),
        }
    }

    /// The next message on `{root}/{suffix}`, within `timeout`.
    pub async fn expect(&mut self, suffix: &str, timeout: Duration) -> Option<Value> {
        let topic = format!("{}/{suffix}", self.root);
        self.wait_for(timeout, |(t, _, _)| *t == topic)
            .await
            .map(|(_, body, _)| body)
    }

    /// The first message (queued or arriving within `timeout`) that `wanted`
    /// accepts; others stay queued, in order.
    pub async fn wait_for(
        &mut self,
        timeout: Duration,
        wanted: impl Fn(&Received) -> bool,
    ) -> Option<Received> {
        if let Some(i) = self.backlog.iter().position(&wanted) {
            return Some(self.backlog.remove(i));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.inbox.recv()).await {
                Ok(Some(message)) if wanted(&message) => return Some(message),
                Ok(Some(message)) => self.backlog.push(message),
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// Drops everything received so far.
    pub fn clear(&mut self) {
        self.backlog.clear();
        while self.inbox.try_recv().is_ok() {}
    }

    pub async fn disconnect(self) {
        // Bounded: the request channel can be full while the event loop
        // waits to hand over a message nobody reads any more.
        let _ = tokio::time::timeout(Duration::from_secs(2), self.client.disconnect()).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.task.abort();
    }
}
