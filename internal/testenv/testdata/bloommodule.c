/*
 * bloommodule: a stand-in for a Redis bloom module (RedisBloom, valkey-bloom),
 * loaded into the tests' redis-server so that the shared filter's BF.* path
 * runs against a real server here, where no bloom module is packaged.
 *
 * It answers the three commands the sidecar uses, with the bloom modules'
 * argument syntax, argument checks and reply shapes:
 *
 *   BF.RESERVE key error_rate capacity [EXPANSION n] [NONSCALING]   -> OK
 *   BF.INSERT key [CAPACITY c] [ERROR e] [EXPANSION n] [NOCREATE] [NONSCALING]
 *             ITEMS item [item ...]                               -> [1|0|error ...]
 *   BF.MEXISTS key item [item ...]                                  -> [1|0 ...]
 *
 * It is exact, not probabilistic: a filter is a hash holding a "meta" field
 * (so that an empty filter exists, as after BF.RESERVE) and one field "+item"
 * per item. An exact set is a valid bloom filter (one with no false
 * positives), so the sidecar's answers do not change; its false-positive
 * handling is tested on the bitmap path.
 *
 * Loaded with "maxitems N", a filter holding N items refuses new ones with a
 * per-item error in BF.INSERT's reply, as a module does for a filter that
 * cannot grow (valkey-bloom's memory limit, a full non-scaling filter).
 *
 * The module API is reached the way every module reaches it: the first word
 * of the load context is the server's RedisModule_GetApi, which returns each
 * API function by name. Only the functions used here are declared.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define REDISMODULE_OK 0
#define REDISMODULE_ERR 1
#define REDISMODULE_APIVER_1 1
#define REDISMODULE_REPLY_ERROR 1
#define REDISMODULE_REPLY_INTEGER 2

typedef struct RedisModuleCtx RedisModuleCtx;
typedef struct RedisModuleString RedisModuleString;
typedef struct RedisModuleCallReply RedisModuleCallReply;
typedef int (*RedisModuleCmdFunc)(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);

static int (*RedisModule_GetApi)(const char *name, void *target);
static void (*RedisModule_SetModuleAttribs)(RedisModuleCtx *ctx, const char *name, int ver, int apiver);
static int (*RedisModule_CreateCommand)(RedisModuleCtx *ctx, const char *name, RedisModuleCmdFunc f,
                                        const char *flags, int firstkey, int lastkey, int keystep);
static void (*RedisModule_AutoMemory)(RedisModuleCtx *ctx);
static int (*RedisModule_WrongArity)(RedisModuleCtx *ctx);
static int (*RedisModule_ReplyWithError)(RedisModuleCtx *ctx, const char *err);
static int (*RedisModule_ReplyWithSimpleString)(RedisModuleCtx *ctx, const char *msg);
static int (*RedisModule_ReplyWithLongLong)(RedisModuleCtx *ctx, long long v);
static int (*RedisModule_ReplyWithArray)(RedisModuleCtx *ctx, long len);
static const char *(*RedisModule_StringPtrLen)(const RedisModuleString *s, size_t *len);
static int (*RedisModule_StringToLongLong)(const RedisModuleString *s, long long *v);
static int (*RedisModule_StringToDouble)(const RedisModuleString *s, double *v);
static RedisModuleCallReply *(*RedisModule_Call)(RedisModuleCtx *ctx, const char *cmd, const char *fmt, ...);
static int (*RedisModule_CallReplyType)(RedisModuleCallReply *r);
static long long (*RedisModule_CallReplyInteger)(RedisModuleCallReply *r);
static const char *(*RedisModule_CallReplyStringPtr)(RedisModuleCallReply *r, size_t *len);

/* maxItems is the "maxitems" load argument; 0: filters grow without bound. */
static long long maxItems;

#define META "meta"

/* argIs reports whether s equals word, ignoring ASCII case. */
static int argIs(RedisModuleString *s, const char *word) {
	size_t n;
	const char *p = RedisModule_StringPtrLen(s, &n);
	if (n != strlen(word)) return 0;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (c >= 'a' && c <= 'z') c -= 'a' - 'A';
		if (c != word[i]) return 0;
	}
	return 1;
}

/* callInt runs a command that answers an integer. On an error reply it
 * replies with that error and returns -1. */
static long long callInt(RedisModuleCtx *ctx, RedisModuleCallReply *r) {
	if (r == NULL) {
		RedisModule_ReplyWithError(ctx, "ERR bloommodule: call failed");
		return -1;
	}
	if (RedisModule_CallReplyType(r) == REDISMODULE_REPLY_ERROR) {
		size_t n;
		const char *msg = RedisModule_CallReplyStringPtr(r, &n);
		char buf[256];
		if (n >= sizeof buf) n = sizeof buf - 1;
		memcpy(buf, msg, n);
		buf[n] = 0;
		RedisModule_ReplyWithError(ctx, buf);
		return -1;
	}
	return RedisModule_CallReplyInteger(r);
}

/* exists returns 1 if key holds a filter, 0 if it is empty, -1 after
 * replying with an error (a key of another type). */
static long long exists(RedisModuleCtx *ctx, RedisModuleString *key) {
	long long n = callInt(ctx, RedisModule_Call(ctx, "EXISTS", "s", key));
	if (n <= 0) return n;
	return callInt(ctx, RedisModule_Call(ctx, "HEXISTS", "sc", key, META));
}

/* checkParams replies with the bloom modules' error for an invalid error
 * rate, capacity or expansion and returns -1; else 0. */
static int checkParams(RedisModuleCtx *ctx, double rate, long long capacity, long long expansion) {
	if (!(rate > 0 && rate < 1)) {
		RedisModule_ReplyWithError(ctx, "ERR (0 < error rate range < 1)");
		return -1;
	}
	if (capacity <= 0) {
		RedisModule_ReplyWithError(ctx, "ERR (capacity should be larger than 0)");
		return -1;
	}
	if (expansion < 1) {
		RedisModule_ReplyWithError(ctx, "ERR expansion should be greater or equal to 1");
		return -1;
	}
	return 0;
}

/* create makes an empty filter at key. */
static int create(RedisModuleCtx *ctx, RedisModuleString *key) {
	return callInt(ctx, RedisModule_Call(ctx, "HSET", "scc", key, META, "1")) < 0 ? -1 : 0;
}

/* itemField writes "+item" into buf (of size cap) and returns its length,
 * or 0 if it does not fit. */
static size_t itemField(char *buf, size_t cap, RedisModuleString *item) {
	size_t n;
	const char *p = RedisModule_StringPtrLen(item, &n);
	if (n + 1 > cap) return 0;
	buf[0] = '+';
	memcpy(buf + 1, p, n);
	return n + 1;
}

static int reserveCommand(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
	RedisModule_AutoMemory(ctx);
	if (argc < 4) return RedisModule_WrongArity(ctx);
	double rate;
	long long capacity, expansion = 2;
	if (RedisModule_StringToDouble(argv[2], &rate) != REDISMODULE_OK)
		return RedisModule_ReplyWithError(ctx, "ERR bad error rate");
	if (RedisModule_StringToLongLong(argv[3], &capacity) != REDISMODULE_OK)
		return RedisModule_ReplyWithError(ctx, "ERR bad capacity");
	for (int i = 4; i < argc; i++) {
		if (argIs(argv[i], "EXPANSION") && i + 1 < argc) {
			if (RedisModule_StringToLongLong(argv[++i], &expansion) != REDISMODULE_OK)
				return RedisModule_ReplyWithError(ctx, "ERR bad expansion");
		} else if (!argIs(argv[i], "NONSCALING")) {
			return RedisModule_ReplyWithError(ctx, "ERR syntax error");
		}
	}
	if (checkParams(ctx, rate, capacity, expansion) < 0) return REDISMODULE_OK;
	long long has = exists(ctx, argv[1]);
	if (has < 0) return REDISMODULE_OK;
	if (has) return RedisModule_ReplyWithError(ctx, "ERR item exists");
	if (create(ctx, argv[1]) < 0) return REDISMODULE_OK;
	return RedisModule_ReplyWithSimpleString(ctx, "OK");
}

static int insertCommand(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
	RedisModule_AutoMemory(ctx);
	if (argc < 4) return RedisModule_WrongArity(ctx);
	double rate = 0.01;
	long long capacity = 100, expansion = 2;
	int nocreate = 0, items = -1;
	for (int i = 2; i < argc && items < 0; i++) {
		if (argIs(argv[i], "ITEMS")) {
			items = i + 1;
		} else if (argIs(argv[i], "NOCREATE")) {
			nocreate = 1;
		} else if (argIs(argv[i], "NONSCALING")) {
			/* accepted; every filter here is bounded by maxitems alone */
		} else if (i + 1 < argc && argIs(argv[i], "CAPACITY")) {
			if (RedisModule_StringToLongLong(argv[++i], &capacity) != REDISMODULE_OK)
				return RedisModule_ReplyWithError(ctx, "ERR bad capacity");
		} else if (i + 1 < argc && argIs(argv[i], "ERROR")) {
			if (RedisModule_StringToDouble(argv[++i], &rate) != REDISMODULE_OK)
				return RedisModule_ReplyWithError(ctx, "ERR bad error rate");
		} else if (i + 1 < argc && argIs(argv[i], "EXPANSION")) {
			if (RedisModule_StringToLongLong(argv[++i], &expansion) != REDISMODULE_OK)
				return RedisModule_ReplyWithError(ctx, "ERR bad expansion");
		} else {
			return RedisModule_ReplyWithError(ctx, "ERR syntax error");
		}
	}
	if (items < 0 || items >= argc) return RedisModule_WrongArity(ctx);
	if (checkParams(ctx, rate, capacity, expansion) < 0) return REDISMODULE_OK;
	long long has = exists(ctx, argv[1]);
	if (has < 0) return REDISMODULE_OK;
	if (!has) {
		if (nocreate) return RedisModule_ReplyWithError(ctx, "ERR not found");
		if (create(ctx, argv[1]) < 0) return REDISMODULE_OK;
	}
	long long held = callInt(ctx, RedisModule_Call(ctx, "HLEN", "s", argv[1]));
	if (held < 0) return REDISMODULE_OK;
	held--; /* the meta field */
	RedisModule_ReplyWithArray(ctx, argc - items);
	for (int i = items; i < argc; i++) {
		char field[512];
		size_t n = itemField(field, sizeof field, argv[i]);
		if (n == 0) {
			RedisModule_ReplyWithError(ctx, "ERR item too long");
			continue;
		}
		long long seen = callInt(ctx, RedisModule_Call(ctx, "HEXISTS", "sb", argv[1], field, n));
		if (seen < 0) continue; /* its error is this item's answer */
		if (seen) {
			RedisModule_ReplyWithLongLong(ctx, 0);
			continue;
		}
		if (maxItems > 0 && held >= maxItems) {
			RedisModule_ReplyWithError(ctx, "ERR non scaling filter is full");
			continue;
		}
		if (callInt(ctx, RedisModule_Call(ctx, "HSET", "sbc", argv[1], field, n, "1")) < 0) continue;
		held++;
		RedisModule_ReplyWithLongLong(ctx, 1);
	}
	return REDISMODULE_OK;
}

static int mexistsCommand(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
	RedisModule_AutoMemory(ctx);
	if (argc < 3) return RedisModule_WrongArity(ctx);
	long long has = exists(ctx, argv[1]);
	if (has < 0) return REDISMODULE_OK;
	RedisModule_ReplyWithArray(ctx, argc - 2);
	for (int i = 2; i < argc; i++) {
		char field[512];
		size_t n = itemField(field, sizeof field, argv[i]);
		long long seen = 0;
		if (has && n > 0) {
			seen = callInt(ctx, RedisModule_Call(ctx, "HEXISTS", "sb", argv[1], field, n));
			if (seen < 0) continue;
		}
		RedisModule_ReplyWithLongLong(ctx, seen);
	}
	return REDISMODULE_OK;
}

#define API(name)                                                                   \
	if (RedisModule_GetApi("RedisModule_" #name, (void *)&RedisModule_##name) != 0) \
		return REDISMODULE_ERR;

int RedisModule_OnLoad(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
	RedisModule_GetApi = (int (*)(const char *, void *))((void **)ctx)[0];
	API(SetModuleAttribs)
	API(CreateCommand)
	API(AutoMemory)
	API(WrongArity)
	API(ReplyWithError)
	API(ReplyWithSimpleString)
	API(ReplyWithLongLong)
	API(ReplyWithArray)
	API(StringPtrLen)
	API(StringToLongLong)
	API(StringToDouble)
	API(Call)
	API(CallReplyType)
	API(CallReplyInteger)
	API(CallReplyStringPtr)
	RedisModule_SetModuleAttribs(ctx, "bf", 1, REDISMODULE_APIVER_1);
	for (int i = 0; i + 1 < argc; i += 2) {
		if (argIs(argv[i], "MAXITEMS") && RedisModule_StringToLongLong(argv[i + 1], &maxItems) != REDISMODULE_OK)
			return REDISMODULE_ERR;
	}
	if (RedisModule_CreateCommand(ctx, "bf.reserve", reserveCommand, "write deny-oom", 1, 1, 1) != REDISMODULE_OK ||
	    RedisModule_CreateCommand(ctx, "bf.insert", insertCommand, "write deny-oom", 1, 1, 1) != REDISMODULE_OK ||
	    RedisModule_CreateCommand(ctx, "bf.mexists", mexistsCommand, "readonly", 1, 1, 1) != REDISMODULE_OK)
		return REDISMODULE_ERR;
	return REDISMODULE_OK;
}
