#!/bin/sh
# docker-compose.yml's Kafka node (KRaft, broker and controller in one): writes its server.properties
# from the container's environment, formats the storage on first start and runs the broker. The
# security settings are scripts/stack.sh's kafka_security_config (compose_test.go compares them):
# SASL/SCRAM-SHA-512 for clients over SASL_PLAINTEXT (production adds TLS: SASL_SSL), the node itself as
# User:broker with SASL/PLAIN (inter-broker on CLIENT, and the CONTROLLER listener), the StandardAuthorizer
# refusing whatever topics/acls.yaml does not grant, User:broker and User:admin super users.
# Listeners: CLIENT (kafka:29092) inside the compose network, HOST (127.0.0.1:9092 on the host, SCRAM
# only), CONTROLLER (kafka:9093). The SCRAM users are created by the kafka-users job (docker/kafka/users.sh).
set -eu
: "${CLUSTER_ID:?}" "${KAFKA_BROKER_PASSWORD:?}"
umask 077 # the files below hold User:broker's password
pw=$KAFKA_BROKER_PASSWORD
plain="org.apache.kafka.common.security.plain.PlainLoginModule required username=\"broker\" password=\"$pw\" user_broker=\"$pw\";"
conf=/tmp/kafka/server.properties
mkdir -p /tmp/kafka
cat >"$conf" <<EOF
# written by docker/kafka/start.sh at every container start
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@kafka:9093
listeners=CLIENT://:29092,HOST://:9092,CONTROLLER://:9093
advertised.listeners=CLIENT://kafka:29092,HOST://127.0.0.1:9092
listener.security.protocol.map=CLIENT:SASL_PLAINTEXT,HOST:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT
inter.broker.listener.name=CLIENT
controller.listener.names=CONTROLLER
listener.name.client.sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.client.plain.sasl.jaas.config=$plain
listener.name.host.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.host.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
sasl.mechanism.inter.broker.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=$plain
sasl.mechanism.controller.protocol=PLAIN
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:broker;User:admin
log.dirs=/var/lib/kafka/data
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
log.segment.bytes=268435456
EOF
# User:broker's client settings: the health check (docker-compose.yml) and nothing else in this container
printf 'security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="broker" password="%s";\n' \
  "$pw" >/tmp/kafka/broker-client.properties
/opt/kafka/bin/kafka-storage.sh format --cluster-id "$CLUSTER_ID" --config "$conf" --ignore-formatted
unset KAFKA_BROKER_PASSWORD pw plain
exec /opt/kafka/bin/kafka-server-start.sh "$conf"
