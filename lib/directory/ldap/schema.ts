/**
 * The mailfleet OpenLDAP schema (slapd.conf format): the attributes the LDAP backend reads by default
 * (flavor openldap). One source for the directory nodes the platform provisions (lib/render/slapd.ts
 * ships it as ldap/mailfleet.schema; `mailfleet render slapd` prints it for your own slapd) and the
 * tests' slapd.
 */
export const MAILFLEET_LDAP_SCHEMA = `# mailfleet OpenLDAP schema: the attributes the LDAP directory backend reads by default
# (flavor: openldap). Load it next to core, cosine and inetorgperson, and add the auxiliary class
# mailfleetUser to user entries that need an alias, a quota, a session cap or a disabled flag.
#
# OIDs sit under OpenLDAP's experimental arc (1.3.6.1.4.1.4203.666): fine for private directories;
# a directory that already defines mailAlternateAddress or mailQuota (qmail, Sun schemas) keeps its
# own definitions and skips this file, since the backend only needs the attribute names.

attributetype ( 1.3.6.1.4.1.4203.666.11.77.1.1 NAME 'mailAlternateAddress'
	DESC 'mailfleet: further addresses delivered to this mailbox (aliases)'
	EQUALITY caseIgnoreIA5Match
	SUBSTR caseIgnoreIA5SubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.26{256} )

attributetype ( 1.3.6.1.4.1.4203.666.11.77.1.2 NAME 'mailQuota'
	DESC 'mailfleet: mailbox quota in bytes'
	EQUALITY integerMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.27
	SINGLE-VALUE )

attributetype ( 1.3.6.1.4.1.4203.666.11.77.1.3 NAME 'mailfleetMaxConnections'
	DESC 'mailfleet: per-user session cap, N (imap, pop3, submission) or service=N'
	EQUALITY caseIgnoreIA5Match
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.26{64} )

attributetype ( 1.3.6.1.4.1.4203.666.11.77.1.4 NAME 'mailfleetDisabled'
	DESC 'mailfleet: TRUE refuses logins and mail for this user'
	EQUALITY booleanMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.7
	SINGLE-VALUE )

attributetype ( 1.3.6.1.4.1.4203.666.11.77.1.5 NAME 'mailfleetQuotaMessages'
	DESC 'mailfleet: mailbox quota in messages'
	EQUALITY integerMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.27
	SINGLE-VALUE )

objectclass ( 1.3.6.1.4.1.4203.666.11.77.2.1 NAME 'mailfleetUser'
	DESC 'mailfleet: mail attributes of a user entry'
	SUP top AUXILIARY
	MAY ( mailAlternateAddress $ mailQuota $ mailfleetQuotaMessages $ mailfleetMaxConnections $ mailfleetDisabled ) )
`;
