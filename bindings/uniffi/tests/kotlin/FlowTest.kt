// The whole device flow through the generated Kotlin bindings, against the
// release cdylib loaded by JNA (-Djna.library.path=target/release): two
// accounts, a linked device with the SAS compared, fan-out to every device
// of both accounts, revocation, closing and reopening a device from its
// store, the two-process case on one store, a Kotlin RecordStore, restores
// (phrase, seed, backup) and error paths. Prints "N passed, M failed" last
// and exits non-zero on any failure.
package org.sessionratchet.tests

import org.sessionratchet.*
import java.nio.ByteBuffer

/** A Kotlin RecordStore over a HashMap: the conditional commit of spec §10.2. */
class MapStore(initial: Map<ByteBuffer, ByteArray> = emptyMap()) : RecordStore {
    private val map = HashMap(initial)
    var commits = 0
        private set
    var conflicts = 0
        private set
    /** The next commit throws, as a full disk would. */
    @Volatile var failNextCommit = false

    @Synchronized
    override fun get(key: ByteArray): ByteArray? = map[ByteBuffer.wrap(key)]?.copyOf()

    @Synchronized
    override fun commit(head: ByteArray, expectedHead: ByteArray?, writes: List<RecordWrite>): Boolean {
        if (failNextCommit) {
            failNextCommit = false
            throw StoreException.Failed("disk full")
        }
        val current = map[ByteBuffer.wrap(head)]
        val matches = if (expectedHead == null) current == null else current != null && current.contentEquals(expectedHead)
        if (!matches) {
            conflicts++
            return false
        }
        for (w in writes) {
            val key = ByteBuffer.wrap(w.key.copyOf())
            val value = w.value
            if (value == null) map.remove(key) else map[key] = value.copyOf()
        }
        commits++
        return true
    }

    @Synchronized fun snapshot() = MapStore(HashMap(map))
    @Synchronized fun size() = map.size
}

object FlowTest {
    private var passed = 0
    private var failed = 0
    private val quiet = System.getenv("SR_TEST_QUIET") != null

    private fun check(name: String, body: () -> Unit) {
        try {
            body()
            passed++
            if (!quiet) println("ok    $name")
        } catch (e: Throwable) {
            failed++
            println("FAIL  $name: $e")
            e.printStackTrace(System.out)
        }
    }

    private fun expect(cond: Boolean, what: String) {
        if (!cond) throw AssertionError(what)
    }

    private fun eq(a: ByteArray, b: ByteArray, what: String) = expect(a.contentEquals(b), what)

    private inline fun <reified E : Throwable> throws(what: String, body: () -> Unit): E {
        try {
            body()
        } catch (e: Throwable) {
            if (e is E) return e
            throw AssertionError("$what: expected ${E::class.simpleName}, got $e", e)
        }
        throw AssertionError("$what: expected ${E::class.simpleName}, nothing thrown")
    }

    private fun info(name: String, platform: Platform = Platform.ANDROID) =
        DeviceInfo(platform, name, ClientVersion(1u, 2u, 3u))

    private fun ByteArray.hex() = joinToString("") { "%02x".format(it) }
    private fun List<ByteArray>.hexes() = map { it.hex() }

    @JvmStatic
    fun main(args: Array<String>) {
        var now = 1_767_225_600uL
        val key = generateStorageKey()
        val aliceDb = MemoryStore()
        val bobDb = MapStore()

        lateinit var alice: Device
        lateinit var bob: Device
        lateinit var aliceKey: ByteArray
        lateinit var bobKey: ByteArray
        lateinit var alicePhrase: String

        check("create two accounts (Rust MemoryStore, Kotlin RecordStore)") {
            expect(key.size == 32, "storage key length")
            val a = createAccount(aliceDb.recordStore(), key, info("Alice's phone"), now)
            val b = createAccount(bobDb, key, info("Bob's laptop", Platform.DESKTOP), now)
            alice = a.device
            bob = b.device
            alicePhrase = a.recoveryPhrase
            expect(a.recoveryPhrase.split(" ").size == 13, "13-word phrase")
            expect(a.recoverySeed.size == 16, "16-byte seed")
            aliceKey = alice.accountKey()
            bobKey = bob.accountKey()
            expect(aliceKey.size == 32 && alice.deviceId().size == 32, "key and id lengths")
            expect(alice.sessionId().length == 66 && alice.sessionId().startsWith("05"), "Session ID")
            expect(alice.generation() > 0uL && bob.generation() > 0uL, "generation moved")
            expect(alice.holdsAccountKey() && !alice.isRevoked(), "holds the account key")
            expect(bobDb.commits > 0 && aliceDb.len() > 0uL, "both stores written")
        }

        check("add each other as contacts") {
            eq(alice.addContact(bob.sessionId(), bob.deviceList(), bob.prekeyRecord()), bobKey, "Bob's key")
            eq(bob.addContact(alice.sessionId(), alice.deviceList(), alice.prekeyRecord()), aliceKey, "Alice's key")
            expect(alice.contacts().hexes() == listOf(bobKey.hex()), "Alice's contacts")
        }

        check("first message and reply") {
            val out = alice.send(bobKey, "hi Bob".toByteArray(), now)
            expect(out.size == 1, "one envelope")
            expect(out[0].mailboxes.hexes() == listOf(bobKey.hex()), "posted to Bob's mailbox")
            val got = bob.receive(out[0].bytes)
            expect(String(got.content) == "hi Bob", "content")
            eq(got.sender, aliceKey, "sender")
            eq(got.senderDevice, alice.deviceId(), "sender device")
            eq(got.conversation, bobKey, "conversation")
            expect(got.kind == ContentKind.MESSAGE && got.newSession, "a new session's message")
            expect(!got.senderListNewer && !got.recipientListOutdated, "flags")
            val reply = bob.send(aliceKey, "hi Alice".toByteArray(), now)
            val back = alice.receive(reply[0].bytes)
            expect(String(back.content) == "hi Alice" && !back.newSession, "reply in the same session")
            val hash = alice.activeSession(bobKey, bob.deviceId())
            expect(hash != null && hash.contentEquals(bob.activeSession(aliceKey, alice.deviceId())), "both hold one session")
        }

        // Alice links a tablet (sharing the account key); Bob links a phone
        // (without it).
        lateinit var tablet: Device
        lateinit var bobPhone: Device
        val tabletDb = MemoryStore()
        val bobPhoneDb = MemoryStore()
        check("link a tablet: the SAS matches on both devices") {
            val published = alice.prekeyRecord()
            val linking = LinkingDevice.start(info("Alice's tablet", Platform.IOS))
            throws<DeviceException.LinkOutOfOrder>("finish before the SAS") {
                linking.finish(tabletDb.recordStore(), key, ByteArray(10), now)
            }
            val answer = alice.respondToLink(linking.request())
            val sasNew = linking.receiveResponse(answer.response)
            val sasOld = answer.approval.sas()
            expect(sasNew.size == 7, "7 emoji")
            expect(sasNew == sasOld, "same SAS: $sasNew vs $sasOld")
            expect(sasNew.all { it.emoji.isNotEmpty() && it.name.isNotEmpty() }, "emoji and names")
            expect(answer.approval.description() == "Alice's tablet", "description shown")
            val approved = alice.approveLink(answer.approval, now, true)
            throws<DeviceException.LinkOutOfOrder>("an approval is used once") {
                alice.approveLink(answer.approval, now, true)
            }
            val linked = linking.finish(tabletDb.recordStore(), key, approved.payload, now)
            tablet = linked.device
            expect(linked.contacts.hexes() == listOf(bobKey.hex()), "contacts to fetch")
            eq(tablet.accountKey(), aliceKey, "same account")
            expect(tablet.holdsAccountKey(), "account key shared")
            eq(approved.deviceList, alice.deviceList(), "list to publish")
            // The tablet takes the phone's bundle, publishes both; the phone
            // takes the tablet's.
            val list = alice.deviceList()
            tablet.updateContact(list, emptyList(), published)
            val record = tablet.prekeyRecord()
            alice.updateContact(list, emptyList(), record)
            tablet.addContact(bob.sessionId(), bob.deviceList(), bob.prekeyRecord())
            val change = bob.updateContact(list, emptyList(), record)
            expect(change.added.hexes() == listOf(tablet.deviceId().hex()), "Bob sees the tablet added")
        }

        check("link Bob's phone without the account key") {
            val published = bob.prekeyRecord()
            val linking = LinkingDevice.start(info("Bob's phone"))
            val answer = bob.respondToLink(linking.request())
            expect(linking.receiveResponse(answer.response) == answer.approval.sas(), "same SAS")
            val approved = bob.approveLink(answer.approval, now, false)
            bobPhone = linking.finish(bobPhoneDb.recordStore(), key, approved.payload, now).device
            expect(!bobPhone.holdsAccountKey(), "no account key")
            val list = bob.deviceList()
            bobPhone.updateContact(list, emptyList(), published)
            val record = bobPhone.prekeyRecord()
            bob.updateContact(list, emptyList(), record)
            bobPhone.addContact(alice.sessionId(), alice.deviceList(), alice.prekeyRecord())
            for (d in listOf(alice, tablet)) d.updateContact(list, emptyList(), record)
            throws<DeviceException.NoAccountKey>("revoke needs the account key") {
                bobPhone.revoke(bob.deviceId(), now)
            }
        }

        check("fan-out: one message reaches every device of both accounts") {
            now += 10uL
            val out = alice.send(bobKey, "to everyone".toByteArray(), now)
            expect(out.size == 1, "one envelope")
            expect(out[0].mailboxes.hexes() == listOf(bobKey.hex(), aliceKey.hex()), "both mailboxes")
            for (d in listOf(bob, bobPhone)) {
                val got = d.receive(out[0].bytes)
                expect(String(got.content) == "to everyone", "content at Bob's devices")
                eq(got.conversation, bobKey, "conversation")
            }
            val copy = tablet.receive(out[0].bytes)
            expect(String(copy.content) == "to everyone", "copy at the tablet")
            eq(copy.conversation, bobKey, "the copy names the conversation")
            eq(copy.senderDevice, alice.deviceId(), "from the phone")
            val back = bobPhone.send(aliceKey, "from Bob's phone".toByteArray(), now)
            for (d in listOf(alice, tablet, bob)) {
                expect(String(d.receive(back[0].bytes).content) == "from Bob's phone", "reply everywhere")
            }
            val note = tablet.send(aliceKey, "note to self".toByteArray(), now)
            expect(note[0].mailboxes.hexes() == listOf(aliceKey.hex()), "a note to self stays in the account")
            expect(String(alice.receive(note[0].bytes).content) == "note to self", "note at the phone")
        }

        check("close a device and open it again from its store") {
            val g = bob.generation()
            bob.close()
            throws<DeviceException.WrongKey>("wrong storage key") {
                Device.open(bobDb, generateStorageKey(), g)
            }
            throws<DeviceException.RolledBack>("a generation later than the store's") {
                Device.open(bobDb, key, g + 1uL)
            }
            bob = Device.open(bobDb, key, g)
            expect(bob.generation() == g, "same generation")
            eq(bob.accountKey(), bobKey, "same account")
            val out = alice.send(bobKey, "after the restart".toByteArray(), now)
            expect(String(bob.receive(out[0].bytes).content) == "after the restart", "the session survived")
            bobPhone.receive(out[0].bytes)
            tablet.receive(out[0].bytes)
        }

        check("two processes on one store: the second commit reloads, no state is sent from twice") {
            val extension = Device.open(aliceDb.recordStore(), key, alice.generation())
            val out = bob.send(aliceKey, "while the app sleeps".toByteArray(), now)
            val got = extension.receive(out[0].bytes)
            expect(String(got.content) == "while the app sleeps", "the extension decrypts")
            tablet.receive(out[0].bytes)
            bobPhone.receive(out[0].bytes)
            // The app did not see that commit: its own commit conflicts,
            // reloads and runs again on the new state.
            throws<DeviceException.Undecryptable>("a message the other process took is a duplicate") {
                alice.receive(out[0].bytes)
            }
            val before = extension.generation()
            val sent = alice.send(bobKey, "from the app".toByteArray(), now)
            expect(alice.generation() > before, "the app moved past the extension's generation")
            expect(String(bob.receive(sent[0].bytes).content) == "from the app", "Bob decrypts")
            bobPhone.receive(sent[0].bytes)
            tablet.receive(sent[0].bytes)
            val again = extension.send(bobKey, "from the extension".toByteArray(), now)
            expect(String(bob.receive(again[0].bytes).content) == "from the extension", "the extension reloads too")
            bobPhone.receive(again[0].bytes)
            tablet.receive(again[0].bytes)
            extension.close()
        }

        check("a failing Kotlin store: the call fails with Store and nothing changes") {
            val g = bob.generation()
            bobDb.failNextCommit = true
            throws<DeviceException.Store>("disk full") { bob.send(aliceKey, "lost".toByteArray(), now) }
            expect(bob.generation() == g, "nothing committed")
            val out = bob.send(aliceKey, "kept".toByteArray(), now)
            expect(String(alice.receive(out[0].bytes).content) == "kept", "the next call works")
            tablet.receive(out[0].bytes)
            bobPhone.receive(out[0].bytes)
            expect(bobDb.conflicts == 0, "no conflicts on a store of one process")
        }

        check("revoke the tablet: it gets NotARecipient") {
            now += 10uL
            val tabletId = tablet.deviceId()
            val revoked = alice.revoke(tabletId, now)
            for (d in listOf(bob, bobPhone)) {
                val change = d.updateContact(revoked, emptyList(), alice.prekeyRecord())
                expect(change.removed.hexes() == listOf(tabletId.hex()), "tablet removed")
            }
            val out = bob.send(aliceKey, "after the revocation".toByteArray(), now)
            expect(String(alice.receive(out[0].bytes).content) == "after the revocation", "the phone still reads")
            bobPhone.receive(out[0].bytes)
            throws<DeviceException.NotARecipient>("the revoked tablet") { tablet.receive(out[0].bytes) }
            tablet.updateContact(revoked, emptyList(), null)
            expect(tablet.isRevoked(), "the tablet knows it was revoked")
            throws<DeviceException.ThisDeviceRevoked>("a revoked device may not send") {
                tablet.send(bobKey, "still here?".toByteArray(), now)
            }
        }

        check("restore from a backup: RolledBack, then restoreFromBackup and heal") {
            val backup = bobDb.snapshot()
            val out = alice.send(bobKey, "after the backup".toByteArray(), now)
            bob.receive(out[0].bytes)
            bobPhone.receive(out[0].bytes)
            val g = bob.generation()
            bob.close()
            throws<DeviceException.RolledBack>("the backup is older") { Device.open(backup, key, g) }
            now += 60uL
            bob = Device.restoreFromBackup(backup, key, g, now)
            expect(bob.generation() >= g, "generation moved past the one seen")
            val record = bob.prekeyRecord()
            for (d in listOf(alice, bobPhone)) d.updateContact(bob.deviceList(), emptyList(), record)
            val healed = bob.heal(now)
            expect(healed.failures.isEmpty(), "no failures: ${healed.failures.map { it.error }}")
            expect(healed.envelopes.isNotEmpty(), "healing notices")
            for (env in healed.envelopes) {
                for (d in listOf(alice, bobPhone)) {
                    val notice = try { d.receive(env.bytes) } catch (e: DeviceException.NotARecipient) { null }
                    if (notice != null) expect(notice.kind == ContentKind.HEAL && notice.newSession, "a healing notice")
                }
            }
            val after = bob.send(aliceKey, "healed".toByteArray(), now)
            expect(String(alice.receive(after[0].bytes).content) == "healed", "Alice reads the healed session")
            expect(String(bobPhone.receive(after[0].bytes).content) == "healed", "and Bob's phone")
            val reply = alice.send(bobKey, "welcome back".toByteArray(), now)
            expect(String(bob.receive(reply[0].bytes).content) == "welcome back", "and back")
            bobPhone.receive(reply[0].bytes)
        }

        check("restore the account from its phrase and from its seed") {
            throws<DeviceException.Phrase>("a bad phrase") {
                Device.restoreAccountFromPhrase(MemoryStore().recordStore(), key, "not a phrase", alice.deviceList(), info("x"), now)
            }
            val fromPhrase = Device.restoreAccountFromPhrase(MemoryStore().recordStore(), key, alicePhrase, alice.deviceList(), info("Alice's new phone"), now)
            eq(fromPhrase.accountKey(), aliceKey, "same account from the phrase")
            expect(fromPhrase.holdsAccountKey(), "holds the key")
            throws<DeviceException.InvalidArgument>("a 15-byte seed") {
                Device.restoreAccount(MemoryStore().recordStore(), key, ByteArray(15), null, info("x"), now)
            }
            val other = createAccount(MemoryStore().recordStore(), key, info("Carol"), now)
            val carolKey = other.device.accountKey()
            val fromSeed = Device.restoreAccount(MemoryStore().recordStore(), key, other.recoverySeed, other.device.deviceList(), info("Carol's new phone"), now)
            eq(fromSeed.accountKey(), carolKey, "same account from the seed")
            expect(fromSeed.deviceList().size > other.device.deviceList().size, "the next list adds the device")
        }

        check("migrate from the single-blob fixture (plain and encrypted)") {
            // tests/data/stored-device-v1.json: Alice and Bob as 0.1.0's
            // SessionManager stored them, with a session between them.
            val json = java.io.File(args.getOrElse(0) { "tests/data/stored-device-v1.json" }).readText()
            fun field(name: String): ByteArray {
                val hex = Regex("\"$name\": \"([0-9a-f]*)\"").find(json)?.groupValues?.get(1)
                    ?: throw IllegalStateException("fixture has no $name")
                return ByteArray(hex.length / 2) { hex.substring(2 * it, 2 * it + 2).toInt(16).toByte() }
            }
            val seed = field("alice_recovery_seed")
            val plain = Device.migrate(MemoryStore().recordStore(), key, field("alice_device"), null, seed, now)
            expect(plain.holdsAccountKey(), "the migrated Alice holds her account key")
            val blobKey = field("alice_device_encrypted_key")
            val fromEncrypted = Device.migrate(MemoryStore().recordStore(), key, field("alice_device_encrypted"), blobKey, seed, now)
            eq(fromEncrypted.accountKey(), plain.accountKey(), "the same account from the encrypted blob")
            eq(fromEncrypted.deviceId(), plain.deviceId(), "the same device")
            val migratedBob = Device.migrate(MemoryStore().recordStore(), key, field("bob_device"), null, null, now)
            expect(!migratedBob.holdsAccountKey(), "Bob kept no account key")
            val out = plain.send(migratedBob.accountKey(), "after migration".toByteArray(), now)
            expect(String(migratedBob.receive(out[0].bytes).content) == "after migration", "the old session still works")
            eq(
                plain.activeSession(migratedBob.accountKey(), migratedBob.deviceId())!!,
                migratedBob.activeSession(plain.accountKey(), plain.deviceId())!!,
                "both report the same session",
            )
            throws<DeviceException.Corrupted>("the encrypted blob under another key") {
                Device.migrate(MemoryStore().recordStore(), key, field("alice_device_encrypted"), ByteArray(32) { 1 }, seed, now)
            }
            throws<DeviceException.InvalidArgument>("a 31-byte blob key") {
                Device.migrate(MemoryStore().recordStore(), key, field("alice_device_encrypted"), ByteArray(31), seed, now)
            }
            throws<DeviceException.InvalidArgument>("a 20-byte account seed") {
                Device.migrate(MemoryStore().recordStore(), key, field("alice_device"), null, ByteArray(20), now)
            }
            throws<DeviceException>("garbage as a blob") {
                Device.migrate(MemoryStore().recordStore(), key, ByteArray(64) { 9 }, null, null, now)
            }
        }

        check("maintain rotates prekeys when due") {
            expect(alice.maintain(now) == null, "nothing due")
            val record = alice.maintain(now + 8uL * 24uL * 3600uL)
            expect(record != null && record.isNotEmpty(), "a record to publish after 8 days")
        }

        check("errors on bad input") {
            throws<DeviceException.Malformed>("garbage envelope") { alice.receive(byteArrayOf(1, 2, 3, 4, 5)) }
            throws<DeviceException.Malformed>("empty envelope") { alice.receive(ByteArray(0)) }
            throws<DeviceException.Malformed>("garbage device list") {
                alice.addContact(bob.sessionId(), ByteArray(100) { 7 }, null)
            }
            throws<DeviceException.InvalidArgument>("not a Session ID") {
                alice.addContact("05zz", bob.deviceList(), null)
            }
            throws<DeviceException.InvalidArgument>("a 31-byte account key") {
                alice.send(ByteArray(31), "x".toByteArray(), now)
            }
            throws<DeviceException.InvalidArgument>("a 31-byte storage key") {
                createAccount(MemoryStore().recordStore(), ByteArray(31), info("x"), now)
            }
            throws<DeviceException.NotEmpty>("create into a used store") {
                createAccount(aliceDb.recordStore(), key, info("x"), now)
            }
            throws<DeviceException.Empty>("open an empty store") { Device.open(MapStore(), key, 0uL) }
            val stranger = createAccount(MemoryStore().recordStore(), key, info("stranger"), now).device
            throws<DeviceException.UnknownAccount>("send to a stranger") {
                alice.send(stranger.accountKey(), "x".toByteArray(), now)
            }
            throws<DeviceException.DeviceList>("a list that is not the Session ID's") {
                alice.addContact(stranger.sessionId(), bob.deviceList(), null)
            }
            throws<DeviceException.ContentTooLong>("content over the limit") {
                alice.send(bobKey, ByteArray(2_000_000), now)
            }
            val linking = LinkingDevice.start(info("x"))
            throws<DeviceException.Malformed>("a garbage link response") { linking.receiveResponse(ByteArray(40) { 1 }) }
            throws<DeviceException.Malformed>("a garbage link request") { alice.respondToLink(ByteArray(3)) }
            throws<DeviceException.NoAccountKey>("respond without the account key") {
                bobPhone.respondToLink(linking.request())
            }
            // After every refused call the device still works.
            val out = alice.send(bobKey, "still fine".toByteArray(), now)
            expect(String(bob.receive(out[0].bytes).content) == "still fine", "still fine")
        }

        check("calls on one device from many threads are serialised") {
            val threads = (0 until 4).map { i ->
                Thread { repeat(5) { alice.send(bobKey, "t$i".toByteArray(), now) } }
            }
            val g = alice.generation()
            threads.forEach { it.start() }
            threads.forEach { it.join() }
            expect(alice.generation() >= g + 20uL, "20 commits, one after another")
        }

        println("$passed passed, $failed failed")
        if (failed != 0) kotlin.system.exitProcess(1)
    }
}
