module github.com/gss-acceptor/gss-acceptor

go 1.26.8

require github.com/jcmturner/gokrb5/v8 v8.4.4

require github.com/jcmturner/gofork v1.7.6 // indirect
