;;; guix.scm — Guix package definition for the netgrant toolkit.
;;;
;;;   npm ci              # builds packages/netgrant/dist (bundle + koffi.node)
;;;   guix build -f guix.scm
;;;   guix shell -f guix.scm -- fd-send ...
;;;
;;; The build needs the npm registry (koffi's prebuilt native module,
;;; esbuild), which a Guix build container does not reach, so this package
;;; takes the bundle `npm ci` produced in the checkout: one JavaScript file
;;; plus koffi.node, no node_modules. It installs them under lib/netgrant,
;;; puts one entry point per program in bin/ (patched to run Guix's node),
;;; and the man pages under share/doc.

(use-modules (guix packages)
             (guix gexp)
             (guix build-system copy)
             ((guix licenses) #:prefix license:)
             (gnu packages node)
             (gnu packages skarnet)
             (gnu packages linux))

(define %source-dir (dirname (current-filename)))

(define (netgrant-file? file stat)
  ;; The built toolkit, its entry points and docs; never node_modules.
  (let ((rel (string-drop file (string-length %source-dir))))
    (or (string=? rel "")
        (string-prefix? "/packages" rel)
        (string-prefix? "/docs" rel)
        (string=? rel "/README.md"))
    (not (string-contains rel "node_modules"))))

(package
  (name "netgrant")
  (version "0.1.0")
  (source (local-file %source-dir "netgrant-checkout"
                      #:recursive? #t
                      #:select? netgrant-file?))
  (build-system copy-build-system)
  (arguments
   (list
    #:install-plan
    #~'(("packages/netgrant/dist/" "lib/netgrant/dist/")
        ("packages/netgrant/bin/" "lib/netgrant/bin/")
        ("docs/" "share/doc/netgrant/"))
    #:phases
    #~(modify-phases %standard-phases
        (add-before 'install 'check-bundle
          (lambda _
            (unless (file-exists? "packages/netgrant/dist/netgrant.cjs")
              (error "run `npm ci` in the checkout first: the bundle is missing"))))
        (add-after 'install 'link-programs
          (lambda _
            (let ((bin (string-append #$output "/bin"))
                  (lib (string-append #$output "/lib/netgrant/bin")))
              (mkdir-p bin)
              (for-each (lambda (prog)
                          (chmod prog #o555)
                          (symlink prog (string-append bin "/" (basename prog))))
                        (find-files lib))))))))
  (inputs (list node-lts))
  (propagated-inputs (list s6 execline iproute))
  (synopsis "Real kernel network interfaces for unprivileged users, VMs and containers")
  (description
   "netgrant is a toolkit of small programs in the s6/UCSPI tradition --
fd-send, fd-recv, peer-check, cap-drop, netns-enter, ipc-pair, mktap,
bridge-acl, netgrant-bridge-helper, netgrant-serve, mkipvlan, mkmacvlan -- that chain by exec and
inherited file descriptors.  A root
super-server checks the peer, creates a tap or an ipvlan/macvlan interface
and passes its file descriptor over a unix socket, so that QEMU and
containers get real interfaces without setuid helpers.")
  (home-page "https://netgrant.invalid/")
  (license license:expat))
